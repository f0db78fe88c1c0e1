"""GDPR Art. 30(1) record of processing activities, generated from networks, agreements and settings.

One record per network holds every item of Art. 30(1), (a) to (g) (ART30_ITEMS), each derived from
what the service runs on: the network file (controller, joint controllers, representative, DPO,
transfers), its agreements (purposes, data, recipients, retention) and the settings together with
the mechanisms the code applies (security measures). Nothing here is prose kept beside the
configuration, so the record changes when they do. What a network file leaves undeclared is listed
under `missing`, never filled in with a guess.
"""

from collections.abc import Iterable
from typing import Any

from app.config import Settings, load_settings
from app.policy.build import NETWORK_CONDITION
from app.policy.fields import DIRECT_IDENTIFIER_FIELDS
from app.policy.model import Agreement, Audience, Contact, Network, Permit, View
from app.policy.policy_set import PolicySet

ART30_ITEMS: dict[str, tuple[str, ...]] = {
    "a": ("controllers",),
    "b": ("purposes",),
    "c": ("data_subjects", "personal_data"),
    "d": ("recipients",),
    "e": ("transfers",),
    "f": ("retention",),
    "g": ("security_measures",),
}
"""Art. 30(1)'s points and the keys of a network's record that answer each."""

# Notes a police officer classifies as police may relate to criminal convictions and offences.
CRIMINAL_OFFENCE_CLASSIFICATIONS = frozenset({"police"})
# Fields of the referral that hold free text, where other people (family, peers) may be named.
FREE_TEXT_FIELDS = frozenset({"narrative", "minutes", "interventions"})
# Fields naming the staff of the member agencies who made or recorded the referral.
STAFF_FIELDS = frozenset({"referring_person", "consent", "status_history"})


def ropa(policy_set: PolicySet, settings: Settings | None = None) -> dict[str, Any]:
    """The record: one entry per network (Art. 30(1) in full) and the agreements it comes from."""
    config = settings or load_settings()
    measures = security_measures(config)
    return {
        "networks": [_network(policy_set, n, measures, config) for n in policy_set.networks],
        "agreements": [_agreement(a) for a in policy_set],
    }


def _contact(contact: Contact | None) -> dict[str, str | None] | None:
    if contact is None:
        return None
    entry: dict[str, str | None] = {"name": contact.name, "address": contact.address, "contact": contact.contact}
    if contact.agency is not None:
        entry["agency"] = contact.agency
    return entry


def _network(
    policy_set: PolicySet, network_id: str, measures: list[dict[str, Any]], settings: Settings
) -> dict[str, Any]:
    network = policy_set.networks[network_id]
    agreements = [a for a in policy_set if network_id in a.networks]
    permits = [p for a in agreements for p in a.all_permits]
    accountable = network.accountability
    transfers = accountable.transfers
    missing = [
        label
        for label, absent in (
            ("controller", accountable.controller is None),
            ("dpo", accountable.dpo is None),
            ("transfers", transfers is None),
            ("purposes", not agreements),
        )
        if absent
    ]
    return {
        "network": network.id,
        "name": network.name,
        "coordinator": network.coordinator,
        "members": sorted(network.members),
        "agreements": list(network.agreements),
        # Synthetic people and cases only: its record is for practice, not one a controller answers for.
        "training": network.training,
        "controllers": {
            "controller": _contact(accountable.controller),
            "joint_controllers": [_contact(c) for c in accountable.joint_controllers],
            "representative": _contact(accountable.representative),
            "dpo": _contact(accountable.dpo),
        },
        "purposes": _purposes(agreements),
        "data_subjects": _data_subjects(permits),
        "personal_data": _personal_data(permits),
        "recipients": _recipients(permits, network),
        "transfers": None if transfers is None else [
            {
                "recipient": t.recipient,
                "country": t.country,
                "international_organisation": t.country is None,
                "safeguard": t.safeguard,
                "description": t.description,
            }
            for t in transfers
        ],
        "retention": _retention(permits, settings),
        "security_measures": measures,
        "missing": missing,
    }


def _purposes(agreements: list[Agreement]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for agreement in agreements:
        declared = dict(agreement.purposes)
        if agreement.emergency:
            declared["emergency"] = "Prevent a risk to life (break-glass access)."
        for purpose, description in declared.items():
            serving = [p for p in agreement.all_permits if purpose in p.purposes]
            entry = found.setdefault(purpose, {"id": purpose, "descriptions": [], "agreements": [],
                                               "legal_bases": set(), "special_category_conditions": set()})
            if description not in entry["descriptions"]:
                entry["descriptions"].append(description)
            entry["agreements"].append(agreement.id)
            entry["legal_bases"] |= {p.legal_basis for p in serving}
            entry["special_category_conditions"] |= {c for p in serving if (c := p.special_category_condition)}
    return [
        {**entry, "description": " / ".join(entry.pop("descriptions")),
         "legal_bases": sorted(entry["legal_bases"]),
         "special_category_conditions": sorted(entry["special_category_conditions"])}
        for entry in (found[k] for k in sorted(found))
    ]


def _disclosed(permits: Iterable[Permit], kind: str) -> set[str]:
    return {item for p in permits if p.view.kind == kind for item in p.view.items}


def _data_subjects(permits: list[Permit]) -> list[dict[str, Any]]:
    """Whose data the network processes, from the fields its agreements let leave (the schema holds no
    parents' or guardians' fields: people close to the referred person appear only in free text)."""
    fields = _disclosed(permits, "referral")
    notes = _disclosed(permits, "note")
    subjects: list[dict[str, Any]] = []
    personal = sorted(f for f in fields if f.startswith("subject.") and f not in ("subject.id", "subject.age_band"))
    if personal or notes or fields - {"subject.id"}:
        subjects.append({"category": "referred_persons",
                         "description": "People referred to the network as at risk, and the subjects of its cases.",
                         "data": personal or sorted(fields)})
    free_text = sorted(fields & FREE_TEXT_FIELDS) + [f"notes: {c}" for c in sorted(notes)]
    if free_text:
        subjects.append({"category": "third_parties",
                         "description": "People a narrative, a note or the minutes name: family, peers, others "
                                        "around the referred person.",
                         "data": free_text})
    staff = sorted(fields & STAFF_FIELDS)
    subjects.append({"category": "agency_staff",
                     "description": "Staff of the member agencies who use the service: people signed in to the "
                                    "console and the people API clients act for, named in the records they make "
                                    "and in the disclosure log (who read what, when, for which purpose).",
                     "data": [*staff, "audit: actor, agency, purpose, fields read"]})
    return subjects


def _personal_data(permits: list[Permit]) -> list[dict[str, Any]]:
    """Every referral field and note classification the agreements let leave, special categories marked."""
    views_of: dict[tuple[str, str], set[str]] = {}
    special: set[tuple[str, str]] = set()
    for p in permits:
        if p.view.kind == "statistics":
            continue
        for item in p.view.items:
            views_of.setdefault((p.view.kind, item), set()).add(p.view.name)
        special |= {(p.view.kind, item) for item in p.view.special}
    return [
        {
            "item": item,
            "kind": kind,
            "special_category": (kind, item) in special,
            "criminal_offence": kind == "note" and item in CRIMINAL_OFFENCE_CLASSIFICATIONS,
            "direct_identifier": kind == "referral" and item in DIRECT_IDENTIFIER_FIELDS,
            "views": sorted(views),
        }
        for (kind, item), views in sorted(views_of.items())
    ]


def _audience(audience: Audience) -> dict[str, list[str]]:
    return {key: sorted(values) for key, values in audience.keys().items()}


def _recipients(permits: list[Permit], network: Network) -> list[dict[str, Any]]:
    """Recipients by category: each distinct audience with what it receives and why; transfers last."""
    grouped: dict[tuple[tuple[str, tuple[str, ...]], ...], dict[str, Any]] = {}
    for p in permits:
        to = _audience(p.audience)
        key = tuple((k, tuple(v)) for k, v in to.items())
        entry = grouped.setdefault(key, {"to": to or {"any": ["every party"]}, "views": set(), "purposes": set(),
                                         "rules": []})
        entry["views"].add(p.view.name)
        entry["purposes"] |= p.purposes
        entry["rules"].append(p.id)
    found = [{**e, "views": sorted(e["views"]), "purposes": sorted(e["purposes"])} for e in grouped.values()]
    for t in network.accountability.transfers or ():
        where = t.country or "international organisation"
        found.append({"to": {"third_country": [where]}, "views": [], "purposes": [], "rules": [],
                      "recipient": t.recipient})
    return found


def _retention(permits: list[Permit], settings: Settings) -> list[dict[str, Any]]:
    """How long each view received is kept, then the service-wide limits (Art. 30(1)(f))."""
    by_view: dict[str, dict[str, set[str]]] = {}
    for p in permits:
        entry = by_view.setdefault(p.view.name, {"retention": set(), "rules": set()})
        entry["retention"].add(str(p.retention))
        entry["rules"].add(p.id)
    found: list[dict[str, Any]] = [
        {"data": name, "retention": sorted(e["retention"]), "rules": sorted(e["rules"])}
        for name, e in sorted(by_view.items())
    ]
    found.append({"data": "referral never closed", "retention": [f"{settings.max_open_retention} after created"],
                  "rules": []})
    return found


def security_measures(settings: Settings) -> list[dict[str, Any]]:
    """Art. 32(1)'s measures as this service applies them, read from the settings and the code in force."""
    from app.console import people

    purge = (f"every {_seconds(settings.retention_interval_seconds)}" if settings.retention_interval_seconds
             else "only when run (`casebridge retention run`)")
    checkpoints = (f"every {_seconds(settings.checkpoint_interval_seconds)} while entries arrive"
                   if settings.checkpoint_interval_seconds else "on demand")
    keyring = "the environment (secret store)" if settings.keyring_json is not None else "a keyring file (0600)"
    reload = (f"every {_seconds(settings.keyring_reload_seconds)}" if settings.keyring_reload_seconds
              else "whenever a key id is unknown")
    second_factor = ", ".join(sorted(people.SECOND_FACTOR_ROLES))
    hasher = people._hasher
    measures: list[tuple[str, str, dict[str, Any]]] = [
        ("encryption_at_rest",
         "Identifying and special-category case fields are sealed with AES-256-GCM under a data key per person, "
         f"wrapped by a key-encryption key held in {keyring} (envelope encryption); keys are rotated with "
         f"`casebridge keys rotate` and re-read {reload}.",
         {"cipher": "AES-256-GCM", "keyring": "environment" if settings.keyring_json is not None else "file",
          "keyring_reload_seconds": settings.keyring_reload_seconds}),
        ("pseudonymisation",
         "Identifiers are matched and the disclosure log indexes people by keyed HMAC-SHA256 blind indexes, "
         "never in clear.", {"blind_index": "HMAC-SHA256"}),
        ("audit_log",
         "Every disclosure and every refusal is written to a hash-chained Merkle-tree log (RFC 9162) whose details "
         f"are encrypted; Ed25519-signed checkpoints of {settings.audit_origin} are made {checkpoints}, and "
         "`casebridge audit verify` proves the log unaltered.",
         {"origin": settings.audit_origin, "checkpoint_interval_seconds": settings.checkpoint_interval_seconds}),
        ("access_control",
         "Deny by default: each read is decided by the agreements in force for a stated purpose, field by field, "
         "and statistics suppress small cells.", {}),
        ("api_authentication",
         f"API clients get ES256-signed access tokens valid {_seconds(settings.token_ttl_seconds)}; failed token "
         f"requests are limited to {settings.token_client_per_minute:g} a minute per client and "
         f"{settings.token_address_per_minute:g} per address.",
         {"token_ttl_seconds": settings.token_ttl_seconds,
          "token_client_per_minute": settings.token_client_per_minute,
          "token_address_per_minute": settings.token_address_per_minute}),
        ("console_authentication",
         f"Console passwords are hashed with argon2id ({hasher.memory_cost // 1024} MiB, {hasher.time_cost} passes) "
         f"and checked against breached passwords; a second factor (TOTP) is required of {second_factor}; "
         f"{people.LOCK_AFTER} failures lock an account for {_seconds(people.LOCK_FOR.total_seconds())}; sessions "
         f"end after {settings.console_idle_minutes} minutes idle and {settings.console_absolute_hours} hours in all"
         + (f"; sign-in through the identity provider {settings.oidc_issuer}" if settings.oidc_issuer else "")
         + ".",
         {"password_hash": "argon2id", "second_factor_roles": sorted(people.SECOND_FACTOR_ROLES),
          "console_idle_minutes": settings.console_idle_minutes,
          "console_absolute_hours": settings.console_absolute_hours, "oidc_issuer": settings.oidc_issuer}),
        ("transport",
         "Console cookies are sent over HTTPS only; TLS is terminated in front of the service."
         if not settings.is_dev else
         "Development mode: cookies are not restricted to HTTPS (never use this mode with real data).",
         {"secure_cookies": not settings.is_dev}),
        ("retention_and_erasure",
         f"Expired records are purged {purge}; a referral never closed is purged {settings.max_open_retention} "
         "after it was made; every erased or purged id is written to a ledger outside the database.",
         {"retention_interval_seconds": settings.retention_interval_seconds,
          "max_open_retention": settings.max_open_retention}),
        ("backups",
         "Backups are consistent online copies (`casebridge backup`); a restore re-applies the erasure ledger so "
         "nobody erased comes back.", {}),
    ]
    return [{"id": ident, "measure": text, "settings": detail} for ident, text, detail in measures]


def _seconds(seconds: float) -> str:
    for unit, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} seconds"


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


def _view(view: View) -> dict[str, Any]:
    return {
        "kind": view.kind,
        "items": sorted(view.items),
        "special_categories": sorted(view.special),
        "direct_identifiers": sorted(view.items & DIRECT_IDENTIFIER_FIELDS) if view.kind == "referral" else [],
        "min_cell": view.min_cell,
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
        "data_categories": {name: _view(view) for name, view in agreement.views.items()},
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


def _to(to: dict[str, list[str]]) -> str:
    return "; ".join(f"{k}: {', '.join(v)}" for k, v in to.items()) or "every party"


def _party(label: str, contact: dict[str, str | None] | None) -> str:
    if contact is None:
        return f"- {label}: none declared"
    parts = [contact["name"], contact.get("address"), contact["contact"]]
    agency = f" (agency `{contact['agency']}`)" if contact.get("agency") else ""
    return f"- {label}: {', '.join(p for p in parts if p)}{agency}"


def _cell(values: Iterable[str]) -> str:
    return ", ".join(values) or "—"


def _network_markdown(n: dict[str, Any]) -> list[str]:
    controllers = n["controllers"]
    lines = [f"## Network: {n['name']} (`{n['network']}`)", ""]
    if n["training"]:
        lines += ["> Training network: synthetic people and cases only.", ""]
    if n["missing"]:
        lines += [f"> Not declared in the network file: {', '.join(n['missing'])}.", ""]
    lines += [
        "### (a) Controller, joint controllers, representative, data-protection officer", "",
        _party("Controller", controllers["controller"]),
        *(_party("Joint controller", j) for j in controllers["joint_controllers"]),
        _party("Representative (Art. 27)", controllers["representative"]),
        _party("Data-protection officer", controllers["dpo"]),
        "", "### (b) Purposes", "",
        "| purpose | description | legal bases (Art. 6) | Art. 9 conditions | agreements |", "|---|---|---|---|---|",
        *(f"| {p['id']} | {p['description']} | {_cell(p['legal_bases'])} |"
          f" {_cell(p['special_category_conditions'])} | {_cell(p['agreements'])} |" for p in n["purposes"]),
        "", "### (c) Categories of data subjects", "",
        *(f"- **{s['category']}**: {s['description']} Data: {_cell(s['data'])}." for s in n["data_subjects"]),
        "", "### (c) Categories of personal data", "",
        "| item | kind | special category (Art. 9) | criminal offences (Art. 10) | identifier | views |",
        "|---|---|---|---|---|---|",
        *(f"| {d['item']} | {d['kind']} | {'yes' if d['special_category'] else '—'} |"
          f" {'yes' if d['criminal_offence'] else '—'} | {'yes' if d['direct_identifier'] else '—'} |"
          f" {_cell(d['views'])} |" for d in n["personal_data"]),
        "", "### (d) Categories of recipients", "",
        "| to | data | purposes | rules |", "|---|---|---|---|",
        *(f"| {_to(r['to'])}{' (' + r['recipient'] + ')' if r.get('recipient') else ''} | {_cell(r['views'])} |"
          f" {_cell(r['purposes'])} | {_cell(r['rules'])} |" for r in n["recipients"]),
        "", "### (e) Transfers to third countries or international organisations", "",
    ]
    if n["transfers"] is None:
        lines.append("Not declared.")
    elif not n["transfers"]:
        lines.append("None.")
    else:
        lines += ["| recipient | country | safeguard |", "|---|---|---|"]
        lines += [f"| {t['recipient']} | {t['country'] or 'international organisation'} | {t['safeguard']} |"
                  for t in n["transfers"]]
    lines += [
        "", "### (f) Time limits for erasure", "",
        "| data | kept for | rules |", "|---|---|---|",
        *(f"| {r['data']} | {_cell(r['retention'])} | {_cell(r['rules'])} |" for r in n["retention"]),
        "", "### (g) Technical and organisational security measures (Art. 32(1))", "",
        *(f"- **{m['id']}**: {m['measure']}" for m in n["security_measures"]),
        "",
    ]
    return lines


def ropa_markdown(policy_set: PolicySet, settings: Settings | None = None) -> str:
    """The same record as Markdown: the networks, each network's Art. 30(1) record, then each agreement."""
    record = ropa(policy_set, settings)
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
    for network in record["networks"]:
        lines += _network_markdown(network)
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
        lines += [
            f"| {r['rule']} | {_to(r['to'])} | {r['view']} | {r['legal_basis']} | {r['retention']} |"
            for r in entry["recipients"]
        ]
        if entry["restrictions"]:
            lines += ["", "### Restrictions", ""]
            lines += [f"- `{d['deny']}`: never to {_to(d['to'])} — {d['data']}" for d in entry["restrictions"]]
        lines.append("")
    return "\n".join(lines)
