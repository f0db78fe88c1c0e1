"""Tamper-evident disclosure log: RFC 9162 Merkle tree and C2SP signed checkpoints."""
