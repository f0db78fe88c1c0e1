"""Case referrals: the standard format, the lifecycle, and the change feed."""
