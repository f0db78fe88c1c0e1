"""Aggregate statistics of referrals, protected by cell suppression."""
