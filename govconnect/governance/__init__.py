"""Governance of what goes out: approval policy, sign-off, retraction, correction, recurring schedules."""
