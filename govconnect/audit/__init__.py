"""The append-only audit log (电子监察): who did what, when, from where."""
