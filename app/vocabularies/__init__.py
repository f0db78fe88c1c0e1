"""Controlled vocabularies (code lists) shared by every CaseBridge schema."""
