"""Shared notes on referrals: classified, append-only."""
