"""HTTP: the agreements in force, explanations of decisions, and reloading agreements."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from app.agreements import service, signing
from app.agreements.schemas import (
    AgreementPage,
    AgreementVersionPage,
    ExplainIn,
    ExplainOut,
    NetworkOut,
    NetworkPage,
    ReloadOut,
    SignatureIn,
    SignatureOut,
    SignaturePage,
)
from app.auth.principal import AdminPrincipal, CurrentPrincipal
from app.errors import NotFound
from app.state import DbSession, ReadSession, State

router = APIRouter(tags=["agreements"])


@router.get("/v1/agreements", operation_id="list_agreements",
    summary="List agreements",
    description=(
        "The information-sharing agreements loaded, with their parties, purposes and periods in force (no"
        " case data)."
    ), response_model=AgreementPage)
def list_agreements(state: State, _: CurrentPrincipal) -> AgreementPage:
    policies = state.policies.current
    return AgreementPage(items=service.in_force(policies, state.clock().date()), proposed=service.proposed(policies))


AgreementId = Annotated[str, Path(max_length=64)]
VersionNumber = Annotated[int, Path(ge=1, le=1_000_000)]


@router.get("/v1/agreements/{agreement_id}/versions", operation_id="list_agreement_versions",
    summary="List an agreement's versions",
    description=(
        "Every version of the agreement loaded on this deployment, newest first: its state (proposed, in force,"
        " superseded), its signatures and who has yet to sign (no case data)."
    ), response_model=AgreementVersionPage,
    responses={404: {"description": "No agreement with this id was ever loaded"}})
def list_agreement_versions(
    session: ReadSession, state: State, _: CurrentPrincipal, agreement_id: AgreementId
) -> AgreementVersionPage:
    return AgreementVersionPage(items=[service.version_out(v) for v in signing.versions(session, state, agreement_id)])


@router.get("/v1/agreements/{agreement_id}/versions/{version}/signatures", operation_id="list_agreement_signatures",
    summary="List a version's signatures",
    description="Who signed this version, when, and the content hash each signed (no case data).",
    response_model=SignaturePage,
    responses={404: {"description": "No such agreement or version"}})
def list_agreement_signatures(
    session: ReadSession, state: State, _: CurrentPrincipal, agreement_id: AgreementId, version: VersionNumber
) -> SignaturePage:
    found = signing.version(session, state, agreement_id, version)
    return SignaturePage(items=[service.signature_out(s) for s in found.signatures])


@router.post("/v1/agreements/{agreement_id}/versions/{version}/signatures", operation_id="sign_agreement",
    summary="Sign an agreement version",
    description=(
        "Signs the proposed version for your agency, as your acting person (or the client itself). State the"
        " content hash of the text you read. A coordinator or signatory of each party signs; when the agreement"
        " names signatories, only they (holding one of those roles). The last signature puts the version in force"
        " (logged)."
    ),
    response_model=SignatureOut, status_code=status.HTTP_201_CREATED,
    responses={
        403: {"description": "Your agency is not a party, or you may not sign for it"},
        404: {"description": "No such agreement or version"},
        409: {"description": "Your agency has signed already, the version is not proposed, or the content hash"
                             " is not the version's"},
    })
def sign_agreement(
    session: DbSession, state: State, principal: CurrentPrincipal, agreement_id: AgreementId,
    version: VersionNumber, body: SignatureIn,
) -> SignatureOut:
    signer = service.signer_of(session, principal)
    signature = signing.sign(session, state, agreement_id, version, body.content_hash, signer)
    return service.signature_out(signature)


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
    responses={403: {"description": "Not involved in that referral; `agreement-expired`/"
                                    "`agreement-not-yet-effective`: your agreement of its network is not in force"},
               404: {"description": "No such referral"}},
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
