"""Operations: retention, backup and restore, status and monitoring."""
