"""`netguard audit`: the catalogue's controls on live AWS accounts, read-only (see docs/audit.md)."""
