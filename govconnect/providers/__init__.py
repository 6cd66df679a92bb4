"""Wiring our settings to the provider adapters in `channels/`: building adapters, and running the provider sandbox."""
