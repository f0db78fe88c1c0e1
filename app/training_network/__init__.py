"""Training networks: synthetic people and cases for practice, isolated from every real network."""
