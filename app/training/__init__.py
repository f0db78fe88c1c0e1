"""Training records: the courses a person has completed, and what agreements require of recipients."""
