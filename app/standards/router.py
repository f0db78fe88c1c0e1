"""Schemas and vocabularies, public to every partner; code mappings, for operators."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, status
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel

from app.agencies.repository import get_agency
from app.auth.principal import AdminPrincipal, bearer
from app.errors import InvalidInput, NotFound
from app.standards import publish, registry
from app.standards.audience import audience_for
from app.state import DbSession, State
from app.vocabularies import mappings
from app.vocabularies.catalog import negotiate_language, vocabularies

router = APIRouter(tags=["standards"])

EVOLUTION = registry.EVOLUTION


class SchemaRef(BaseModel):
    name: str
    version: str
    id: str
    url: str


class SchemaList(BaseModel):
    items: list[SchemaRef]
    next_cursor: str | None = None
    evolution: str


def json_schema(name: str, version: str, audience: publish.Audience = publish.ANYONE) -> dict[str, Any]:
    """The published document of a registry entry (KeyError if there is none)."""
    entry = registry.find(name, version)
    if entry is None:
        raise KeyError(f"{name}/{version}")
    return publish.document(entry, audience)


@router.get("/v1/schemas", operation_id="list_schemas",
    summary="List published schemas",
    description="The JSON Schemas of the case documents, by name and version.", response_model=SchemaList)
def list_schemas() -> SchemaList:
    return SchemaList(
        items=[
            SchemaRef(name=v.name, version=v.version, id=v.id, url=f"/v1/schemas/{v.id}") for v in registry.VERSIONS
        ],
        evolution=EVOLUTION,
    )


@router.get(
    "/v1/schemas/{name}/{version}",
    operation_id="get_schema",
    summary="Get a published JSON Schema",
    description="The JSON Schema (2020-12) of one case document version, as `application/schema+json`.",
    responses={200: {"content": {"application/schema+json": {}}}, 404: {"description": "Unknown schema"}},
)
def get_schema(
    name: str, version: str, request: Request, state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Response:
    # Public; with a referrer's token, its own networks and code systems are spelled out (app/standards/audience.py).
    entry = registry.find(name, version)
    if entry is None:
        known = ", ".join(registry.published_ids())
        raise NotFound(f"No schema {name}/{version}; published: {known}.")
    document = publish.document(entry, audience_for(request, state, credentials))
    # A schema, not a JSON reply: its `properties` name case fields but hold none (tests/platform/test_door.py).
    body = json.dumps(document, ensure_ascii=False).encode()
    return Response(body, media_type="application/schema+json", headers={"Vary": "Authorization"})


AcceptLanguage = Annotated[str | None, Header(alias="Accept-Language", max_length=4096)]


@router.get("/v1/vocabularies", operation_id="list_vocabularies",
    summary="List vocabularies",
    description=(
        "Every code vocabulary with its codes and labels in the `Accept-Language` asked for (default "
        "English)."
    ))
def list_vocabularies(accept_language: AcceptLanguage = None) -> JSONResponse:
    catalog = vocabularies()
    available = set().union(*(v.languages for v in catalog.values()))
    languages = negotiate_language(accept_language, available)
    items = []
    for name in sorted(catalog):
        rendered = catalog[name].localized(languages)
        items.append({k: rendered[k] for k in ("name", "version", "title", "description", "language")}
                     | {"url": f"/v1/vocabularies/{name}", "codes": len(catalog[name].codes)})
    return JSONResponse(
        {"items": items, "next_cursor": None},
        headers={"Content-Language": languages[0], "Vary": "Accept-Language"},
    )


@router.get(
    "/v1/vocabularies/{name}",
    operation_id="get_vocabulary",
    summary="Get a vocabulary",
    description="One code vocabulary with its codes and labels.",
    responses={404: {"description": "Unknown vocabulary"}},
)
def get_vocabulary(name: str, accept_language: AcceptLanguage = None) -> JSONResponse:
    vocabulary = vocabularies().get(name)
    if vocabulary is None:
        raise NotFound(f"No vocabulary {name!r}.", known=sorted(vocabularies()))
    rendered = vocabulary.localized(negotiate_language(accept_language, vocabulary.languages))
    return JSONResponse(rendered, headers={"Content-Language": rendered["language"], "Vary": "Accept-Language"})


class MappingPage(BaseModel):
    items: list[mappings.MappingOut]
    next_cursor: str | None = None


@router.get("/v1/admin/mappings", operation_id="list_mappings",
    summary="List code mappings",
    description="Agencies' local codes mapped to the shared vocabularies.", tags=["admin"], response_model=MappingPage)
def list_mappings(session: DbSession, _: AdminPrincipal) -> MappingPage:
    return MappingPage(items=mappings.list_mappings(session))


@router.post(
    "/v1/admin/mappings",
    operation_id="create_mapping",
    summary="Map a local code",
    openapi_extra={"x-server-side-rules": ["`agency` names a registered agency",
                                           "each key of `codes` is a vocabulary and each target one of its codes"]},
    description=(
        "Maps one agency's local code to a shared vocabulary code; referrals it posts with the local code"
        " are stored with the shared one."
    ),
    tags=["admin"],
    status_code=status.HTTP_201_CREATED,
    response_model=mappings.MappingOut,
)
def create_mapping(session: DbSession, _: AdminPrincipal, body: mappings.MappingIn) -> mappings.MappingOut:
    if get_agency(session, body.agency) is None:
        raise InvalidInput(f"Agency {body.agency!r} does not exist.",
                           errors=[{"path": "$.agency", "message": "unknown agency"}])
    return mappings.register(session, body)
