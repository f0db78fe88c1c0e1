"""GDPR Art. 30 record of processing activities, built from the agreements."""

from typing import Any

from app.policy.build import NETWORK_CONDITION
from app.policy.fields import DIRECT_IDENTIFIER_FIELDS
from app.policy.model import Agreement, Audience, Permit
from app.policy.policy_set import PolicySet


def ropa(policy_set: PolicySet) -> dict[str, Any]:
    """One entry per agreement: controller, networks, purposes, data, recipients, bases, retention."""
    return {
        "networks": [_network(policy_set, n) for n in policy_set.networks],
        "agreements": [_agreement(a) for a in policy_set],
    }


def _network(policy_set: PolicySet, network_id: str) -> dict[str, Any]:
    network = policy_set.networks[network_id]
    return {
        "network": network.id,
        "name": network.name,
        "coordinator": network.coordinator,
        "members": sorted(network.members),
        "agreements": list(network.agreements),
    }


def _audience(audience: Audience) -> dict[str, list[str]]:
    return {key: sorted(values) for key, values in audience.keys().items()}


def _recipient(permit: Permit) -> dict[str, Any]:
    return {
        "rule": permit.id,
        "to": _audience(permit.audience),
        "view": permit.view.name,
        "purposes": sorted(permit.purposes),
        "conditions": {key: sorted(values) for key, values in permit.when if key != NETWORK_CONDITION},
        "legal_basis": permit.legal_basis,
        "special_category_condition": permit.special_category_condition,
        "retention": str(permit.retention),
        "emergency_window": permit.emergency_window.iso() if permit.emergency_window else None,
    }


def _agreement(agreement: Agreement) -> dict[str, Any]:
    permits = agreement.all_permits
    purposes = []
    for purpose, description in list(agreement.purposes.items()) + (
        [("emergency", "Prevent a risk to life (break-glass access).")]
        if agreement.emergency
        else []
    ):
        serving = [p for p in permits if purpose in p.purposes]
        purposes.append(
            {
                "id": purpose,
                "description": description,
                "legal_bases": sorted({p.legal_basis for p in serving}),
                "special_category_conditions": sorted(
                    {c for p in serving if (c := p.special_category_condition)}
                ),
                "data_categories": sorted({p.view.name for p in serving}),
                "recipients": [p.id for p in serving],
            }
        )
    return {
        "agreement": agreement.id,
        "version": agreement.version,
        "title": agreement.title,
        "controller_contact": agreement.controller_contact,
        "effective_from": agreement.effective_from.isoformat(),
        "review_by": agreement.review_by.isoformat(),
        "content_hash": agreement.content_hash,
        # Whose records it decides; an agreement across several networks shares aggregates only.
        "networks": sorted(agreement.networks),
        "parties": list(agreement.parties),
        "purposes": purposes,
        "data_categories": {
            name: {
                "kind": view.kind,
                "items": sorted(view.items),
                "special_categories": sorted(view.special),
                "direct_identifiers": sorted(view.items & DIRECT_IDENTIFIER_FIELDS)
                if view.kind == "referral"
                else [],
                "min_cell": view.min_cell,
            }
            for name, view in agreement.views.items()
        },
        "recipients": [_recipient(p) for p in permits],
        "legal_bases": sorted({p.legal_basis for p in permits}),
        "special_category_conditions": sorted(
            {c for p in permits if (c := p.special_category_condition)}
        ),
        "restrictions": [
            {"deny": d.id, "to": _audience(d.audience), "data": d.view_label}
            for d in agreement.denies
        ],
    }


def _networks_line(networks: list[str]) -> str:
    if len(networks) > 1:
        return f"- Networks: {', '.join(networks)} (across networks: aggregate statistics only)"
    if networks:
        return f"- Network: {networks[0]} (it decides records of this network only)"
    return "- Network: any (an agreement built in code)"


def ropa_markdown(policy_set: PolicySet) -> str:
    """The same record as Markdown, one section per agreement."""
    record = ropa(policy_set)
    lines = ["# Record of processing activities (GDPR Art. 30)", ""]
    if record["networks"]:
        lines += [
            "## Networks",
            "",
            "| network | name | coordinator | agreements | members |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {n['network']} | {n['name']} | {n['coordinator'] or '—'} |"
            f" {', '.join(n['agreements']) or '—'} | {', '.join(n['members'])} |"
            for n in record["networks"]
        ]
        lines.append("")
    for entry in record["agreements"]:
        lines += [
            f"## {entry['title']}",
            "",
            f"- Agreement: `{entry['agreement']}` version {entry['version']}"
            f" (sha256 `{entry['content_hash'][:12]}…`)",
            f"- Controller contact: {entry['controller_contact']}",
            _networks_line(entry["networks"]),
            f"- In force: {entry['effective_from']} until review by {entry['review_by']}",
            f"- Parties: {', '.join(entry['parties'])}",
            f"- Legal bases (Art. 6): {', '.join(entry['legal_bases'])}",
            "- Special-category conditions (Art. 9): "
            + (", ".join(entry["special_category_conditions"]) or "none"),
            "",
            "### Purposes",
            "",
            "| purpose | description | legal bases | data | recipients |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {p['id']} | {p['description']} | {', '.join(p['legal_bases'])} |"
            f" {', '.join(p['data_categories'])} | {', '.join(p['recipients'])} |"
            for p in entry["purposes"]
        ]
        lines += [
            "",
            "### Categories of data",
            "",
            "| view | items | special categories |",
            "|---|---|---|",
        ]
        lines += [
            f"| {name} | {', '.join(d['items'])} | {', '.join(d['special_categories']) or '—'} |"
            for name, d in entry["data_categories"].items()
        ]
        lines += [
            "",
            "### Recipients and retention",
            "",
            "| rule | to | view | legal basis | retention |",
            "|---|---|---|---|---|",
        ]
        for r in entry["recipients"]:
            to = "; ".join(f"{k}: {', '.join(v)}" for k, v in r["to"].items())
            lines.append(
                f"| {r['rule']} | {to} | {r['view']} | {r['legal_basis']} | {r['retention']} |"
            )
        if entry["restrictions"]:
            lines += ["", "### Restrictions", ""]
            for d in entry["restrictions"]:
                to = "; ".join(f"{k}: {', '.join(v)}" for k, v in d["to"].items()) or "every party"
                lines.append(f"- `{d['deny']}`: never to {to} — {d['data']}")
        lines.append("")
    return "\n".join(lines)
