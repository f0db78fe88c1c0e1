"""Access tokens, principals, and role checks."""
