"""The dlr stage: asks SMS gateways that only answer status queries for delivery reports."""
