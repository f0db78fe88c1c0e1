"""HTTP: the agreements in force, explanations of decisions, and reloading agreements."""

from __future__ import annotations

from fastapi import APIRouter

from app.agreements import service
from app.agreements.schemas import AgreementPage, ExplainIn, ExplainOut, NetworkOut, NetworkPage, ReloadOut
from app.auth.principal import AdminPrincipal, CurrentPrincipal
from app.errors import NotFound
from app.state import DbSession, State

router = APIRouter(tags=["agreements"])


@router.get("/v1/agreements", operation_id="list_agreements",
    summary="List agreements",
    description=(
        "The information-sharing agreements loaded, with their parties, purposes and periods in force (no"
        " case data)."
    ), response_model=AgreementPage)
def list_agreements(state: State, _: CurrentPrincipal) -> AgreementPage:
    return AgreementPage(items=service.in_force(state.policies.current, state.clock().date()))


@router.get("/v1/networks", operation_id="list_networks",
    summary="List networks", response_model=NetworkPage)
def list_networks(state: State, _: CurrentPrincipal) -> NetworkPage:
    """The networks on this deployment: coordinator, members and agreements (no case data)."""
    return NetworkPage(items=service.networks(state.policies.current))


@router.get("/v1/networks/{network_id}", operation_id="get_network",
    summary="Get a network",
    description="One network: its coordinator, member agencies and agreements (no case data).",
    response_model=NetworkOut,
            responses={404: {"description": "No such network"}})
def get_network(state: State, _: CurrentPrincipal, network_id: str) -> NetworkOut:
    network = state.policies.current.network(network_id)
    if network is None:
        raise NotFound(f"No network {network_id!r} on this deployment.")
    return NetworkOut(**network.to_dict())


@router.post(
    "/v1/decisions/explain",
    operation_id="explain_decision",
    summary="Explain an access decision",
    description=(
        "Why a read of a referral for a purpose would be permitted or denied, and by which agreement "
        "rules; for agencies involved in it. Discloses no case data."
    ),
    openapi_extra={"x-case-data": True,
                   "x-server-side-rules": ["exactly one of `referral_id` and `record` is given"]},
    response_model=ExplainOut,
    responses={403: {"description": "Not involved in that referral"}, 404: {"description": "No such referral"}},
)
def explain_decision(session: DbSession, state: State, principal: CurrentPrincipal, body: ExplainIn) -> ExplainOut:
    explanation = service.explain_for(session, state.policies.current, principal, body, state.clock().date())
    return ExplainOut(**explanation.to_dict())


@router.post(
    "/v1/admin/agreements/reload",
    operation_id="reload_agreements",
    summary="Reload agreements",
    description=(
        "Reloads the agreement files now and reports what changed; a file that fails validation leaves "
        "the agreements in force unchanged."
    ),
    tags=["admin"],
    response_model=ReloadOut,
)
def reload_agreements(session: DbSession, state: State, principal: AdminPrincipal) -> ReloadOut:
    return service.reload_report(service.reload_and_log(state, "admin", principal, session))
