"""Agency message templates (versioned, per-channel variants) and agency SMS sender profiles."""
