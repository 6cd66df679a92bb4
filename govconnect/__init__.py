"""GovConnect: an open notification gateway for city e-government."""

__version__ = "0.1.0"
