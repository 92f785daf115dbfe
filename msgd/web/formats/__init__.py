"""Date formats of the admin (FORMAT_MODULE_PATH): every time shows its zone (msgd/localtime.py)."""
