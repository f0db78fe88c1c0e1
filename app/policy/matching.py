"""Rule conditions checked one by one, each failure described in words (for explain)."""

from collections.abc import Iterable, Mapping
from datetime import date

from app.policy.decision import AttributeValue, Caller
from app.policy.model import Agreement, Audience, Conditions


def listing(values: Iterable[str]) -> str:
    return "[" + ", ".join(sorted(values)) + "]"


def agreement_failure(agreement: Agreement, caller: Caller, now: date) -> str | None:
    if now < agreement.effective_from:
        return f"agreement not in force until {agreement.effective_from}"
    if now >= agreement.review_by:
        return f"agreement expired on {agreement.review_by}"
    if caller.agency_id not in agreement.party_set:
        return f"agency {caller.agency_id} is not a party to {agreement.id}"
    return None


def audience_failure(audience: Audience, caller: Caller, *, empty_matches: bool) -> str | None:
    if audience.is_empty:
        return None if empty_matches else "rule names no recipients (empty `to`)"
    if audience.agencies is not None and caller.agency_id not in audience.agencies:
        return f"caller agency {caller.agency_id} not in {listing(audience.agencies)}"
    if audience.sectors is not None and caller.sector not in audience.sectors:
        return f"caller sector {caller.sector} not in {listing(audience.sectors)}"
    if audience.roles is not None and audience.roles.isdisjoint(caller.roles):
        return f"caller roles {listing(caller.roles)} not in {listing(audience.roles)}"
    if audience.relations is not None and audience.relations.isdisjoint(caller.relations):
        return f"caller relations {listing(caller.relations)} not in {listing(audience.relations)}"
    return None


def conditions_failure(
    when: Conditions, attributes: Mapping[str, AttributeValue], *, missing_holds: bool
) -> str | None:
    """Permits fail on a missing attribute; denies hold on one (both fail closed)."""
    for key, allowed in when:
        value = attributes.get(key)
        if value is None or not value:
            if not missing_holds:
                return f"{key} missing, needs one of {listing(allowed)}"
        elif isinstance(value, str):
            if value not in allowed:
                return f"{key}={value} not in {listing(allowed)}"
        elif value.isdisjoint(allowed):
            return f"{key}={listing(value)} has none of {listing(allowed)}"
    return None
