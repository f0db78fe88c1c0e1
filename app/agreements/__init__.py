"""The agreements in force over HTTP and the CLI: listing, explaining, reloading, tooling."""
