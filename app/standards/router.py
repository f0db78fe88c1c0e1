"""Schemas and vocabularies, public to every partner; code mappings, for operators."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.agencies.repository import get_agency
from app.auth.principal import AdminPrincipal
from app.errors import InvalidInput, NotFound
from app.notes.schemas import NoteIn
from app.referrals.schemas import ReferralIn
from app.state import DbSession
from app.vocabularies import mappings
from app.vocabularies.catalog import negotiate_language, vocabularies

router = APIRouter(tags=["standards"])

SCHEMAS: dict[tuple[str, str], type[BaseModel]] = {
    ("referral", "v1"): ReferralIn,
    ("note", "v1"): NoteIn,
}
EVOLUTION = (
    "Within a version, changes are additive only: new optional fields and new codes. "
    "Renaming, removing or tightening a field makes a new version (v2), and every older "
    "version stays accepted and served."
)


class SchemaRef(BaseModel):
    name: str
    version: str
    id: str
    url: str


class SchemaList(BaseModel):
    items: list[SchemaRef]
    next_cursor: str | None = None
    evolution: str


def json_schema(name: str, version: str) -> dict[str, Any]:
    model = SCHEMAS[(name, version)]
    document = model.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://casebridge.example/schemas/{name}/{version}",
        **document,
    }


@router.get("/v1/schemas", operation_id="list_schemas", response_model=SchemaList)
def list_schemas() -> SchemaList:
    return SchemaList(
        items=[
            SchemaRef(name=n, version=v, id=f"{n}/{v}", url=f"/v1/schemas/{n}/{v}") for n, v in SCHEMAS
        ],
        evolution=EVOLUTION,
    )


@router.get(
    "/v1/schemas/{name}/{version}",
    operation_id="get_schema",
    responses={200: {"content": {"application/schema+json": {}}}, 404: {"description": "Unknown schema"}},
)
def get_schema(name: str, version: str) -> JSONResponse:
    if (name, version) not in SCHEMAS:
        known = ", ".join(f"{n}/{v}" for n, v in SCHEMAS)
        raise NotFound(f"No schema {name}/{version}; published: {known}.")
    return JSONResponse(json_schema(name, version), media_type="application/schema+json")


AcceptLanguage = Annotated[str | None, Header(alias="Accept-Language", max_length=4096)]


@router.get("/v1/vocabularies", operation_id="list_vocabularies")
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


@router.get("/v1/admin/mappings", operation_id="list_mappings", tags=["admin"], response_model=MappingPage)
def list_mappings(session: DbSession, _: AdminPrincipal) -> MappingPage:
    return MappingPage(items=mappings.list_mappings(session))


@router.post(
    "/v1/admin/mappings",
    operation_id="create_mapping",
    tags=["admin"],
    status_code=status.HTTP_201_CREATED,
    response_model=mappings.MappingOut,
)
def create_mapping(session: DbSession, _: AdminPrincipal, body: mappings.MappingIn) -> mappings.MappingOut:
    if get_agency(session, body.agency) is None:
        raise InvalidInput(f"Agency {body.agency!r} does not exist.",
                           errors=[{"path": "$.agency", "message": "unknown agency"}])
    return mappings.register(session, body)
