"""The only package that touches keys and ciphers."""
