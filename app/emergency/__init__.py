"""Break the glass: time-limited, audited access when a life is at risk and no rule grants."""
