"""CaseBridge: information sharing for multi-agency prevention networks."""

__version__ = "0.1.0"
