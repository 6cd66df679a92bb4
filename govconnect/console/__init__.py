"""The operator console at /console/: the office's pages over the same domain services as the API."""
