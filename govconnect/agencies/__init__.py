"""Agencies, their API keys and staff accounts: models and the service functions the API, pages and CLI call."""
