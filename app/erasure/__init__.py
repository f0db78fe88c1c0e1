"""Erasure on request (GDPR Art. 17): the person is erased at once, the same way a purge does it."""
