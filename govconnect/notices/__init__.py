"""Notices: accepting, fanning out, sending and tracking government notices."""
