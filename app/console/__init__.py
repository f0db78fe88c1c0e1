"""The console: server-rendered pages for the people of a network (docs/console.md).

The pages call the API in process as the signed-in person (app.console.web.Api): the same
checks, the same one door, the same log as any API client.
"""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    from app.console import router, web

    app.mount(f"{web.PREFIX}/static", router.STATIC, name="console-static")
    app.include_router(router.router)
    for module in router.role_pages():
        app.include_router(module.router)
