"""The people referred: pseudonymous ids, identity encrypted under a per-subject key."""
