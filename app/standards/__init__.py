"""The published standards: versioned JSON Schemas, vocabularies, and agency code mappings."""
