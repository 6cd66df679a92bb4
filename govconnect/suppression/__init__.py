"""Who must not get normal notices: the suppression list, per-person daily caps, leave links."""
