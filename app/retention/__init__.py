"""Retention: dates, legal holds, purge, its schedule, backups, and erasures that stay applied."""
