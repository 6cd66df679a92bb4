"""HTTP API: routers are thin; each validates, authorises and calls one function."""
