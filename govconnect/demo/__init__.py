"""`serve --demo`: demo accounts, data for every area, and the banner that tells a newcomer what to try."""
