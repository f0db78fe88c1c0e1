"""Codes of conduct: each person accepts the current version of every network's code before seeing case data."""
