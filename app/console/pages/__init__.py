"""The pages of each role; each module has a ``router`` (app.console.router.role_pages)."""
