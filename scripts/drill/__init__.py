"""The disaster-recovery drill's parts: its own services and backups, traffic, checks."""
