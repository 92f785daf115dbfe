"""msgd: notification pipeline for ISP billing systems."""

__version__ = "0.1.0"
