"""Load agreements from YAML files, reporting every problem with file, line and reason."""

import hashlib
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from app.policy import documents, training
from app.policy.build import AgreementBuilder
from app.policy.documents import AgreementDocument, ContactDocument, JointControllerDocument, NetworkDocument
from app.policy.fields import REFERRAL_FIELDS
from app.policy.issues import did_you_mean
from app.policy.model import Accountability, Agreement, Conduct, Contact, Network, Transfer, protocol_of
from app.policy.policy_set import PolicySet
from app.policy.yaml_nodes import (
    YamlSyntaxError,
    duplicate_keys,
    format_path,
    parse_yaml,
)

_REQUIRED_HINTS = {
    "purposes": " (a permit names the purposes it serves)",
    "legal_basis": " (the GDPR Art. 6(1) lawful basis of the disclosure)",
    "retention": " (how long the recipient may keep it, e.g. P90D or 'P6Y after closed')",
}
_PATTERN_HINTS = {
    documents.SLUG_PATTERN: "ids are lowercase letters, digits, '-' and '_'",
    documents.VIEW_NAME_PATTERN: "a view is referral.<name>, notes.<name> or statistics[.<name>]",
}


def _document_keys() -> frozenset[str]:
    keys: set[str] = set()
    for value in vars(documents).values():
        if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel:
            keys |= set(value.model_fields)
    return frozenset(keys)


_KNOWN_KEYS = _document_keys()


@dataclass(frozen=True, slots=True)
class AgreementError:
    """Why a file was refused: where (file, line, path) and what is wrong."""

    file: str
    line: int | None
    reason: str
    path: str = ""
    agreement: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path + ': ' if self.path else ''}{self.reason}"


@dataclass(frozen=True, slots=True)
class ParsedAgreement:
    """The outcome for one file: an agreement, or the errors that kept it out."""

    agreement: Agreement | None
    errors: list[AgreementError]
    warnings: list[str]
    agreement_id: str | None


@dataclass(frozen=True, slots=True)
class LoadResult:
    policy_set: PolicySet
    errors: list[AgreementError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Each loaded agreement's file content, by id: the text a signature signs and the ledger keeps.
    texts: dict[str, bytes] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def parse_agreement(
    content: bytes,
    source: str,
    known_fields: frozenset[str] = REFERRAL_FIELDS,
    known_agencies: Collection[str] | None = None,
) -> ParsedAgreement:
    """Parse and check one agreement file's bytes; `source` names it in messages."""
    content_hash = hashlib.sha256(content).hexdigest()
    try:
        parsed = parse_yaml(content.decode("utf-8"))
    except UnicodeDecodeError:
        return ParsedAgreement(None, [AgreementError(source, None, "file is not UTF-8")], [], None)
    except YamlSyntaxError as exc:
        return ParsedAgreement(None, [AgreementError(source, exc.line, exc.reason)], [], None)
    data = parsed.data
    agreement_id = data.get("agreement") if isinstance(data, dict) else None
    agreement_id = agreement_id if isinstance(agreement_id, str) else None

    def error(path: tuple[str | int, ...], reason: str, line: int | None = None) -> AgreementError:
        found = line if line is not None else parsed.line_of(path)
        return AgreementError(source, found, reason, format_path(path), agreement_id)

    if not isinstance(data, dict):
        return ParsedAgreement(
            None, [error((), "an agreement file must be a YAML mapping")], [], None
        )
    errors = [
        error(path, f"duplicate key {name!r}", line)
        for path, line, name in duplicate_keys(parsed.root)
    ]
    try:
        document = AgreementDocument.model_validate(data)
    except ValidationError as exc:
        errors.extend(_validation_errors(exc, error))
        return ParsedAgreement(None, errors, [], agreement_id)
    builder = AgreementBuilder(document, known_fields, _as_set(known_agencies))
    agreement = builder.build(content_hash, source)
    warnings = []
    for issue in builder.issues:
        if issue.level == "error":
            errors.append(error(issue.path, issue.reason))
        else:
            warnings.append(str(error(issue.path, issue.reason)))
    if errors:
        return ParsedAgreement(None, errors, warnings, agreement_id)
    return ParsedAgreement(agreement, [], warnings, agreement_id)


def parse_stored(
    content: bytes, source: str, known_fields: frozenset[str], known_agencies: Collection[str] | None
) -> Agreement | None:
    """A stored version's text parsed as its file once was (None if it no longer parses)."""
    return _parse_unchanged(content, source, known_fields, _as_set(known_agencies)).agreement


def _as_set(values: Collection[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


def _validation_errors(
    exc: ValidationError, error: Callable[[tuple[str | int, ...], str], AgreementError]
) -> list[AgreementError]:
    found = []
    for item in exc.errors():
        path = tuple(p for p in item["loc"] if p != "[key]")
        found.append(error(path, _reason(item)))
    return found


def _reason(item: ErrorDetails) -> str:
    kind, loc = item["type"], item["loc"]
    name = str(loc[-1]) if loc else ""
    if kind == "missing":
        return f"missing required field {name!r}{_REQUIRED_HINTS.get(name, '')}"
    if kind == "extra_forbidden":
        return f"unknown field {name!r}{did_you_mean(name, _KNOWN_KEYS)}"
    if kind == "string_pattern_mismatch":
        pattern = item.get("ctx", {}).get("pattern", "")
        hint = _PATTERN_HINTS.get(pattern, f"expected pattern {pattern}")
        return f"{item['input']!r} is not valid here: {hint}"
    if kind == "too_short" and name == "purposes":
        return "a permit needs at least one purpose"
    message = str(item["msg"])
    return message.removeprefix("Value error, ")


def load_agreements(
    directory: str | Path,
    known_fields: frozenset[str] = REFERRAL_FIELDS,
    known_agencies: Collection[str] | None = None,
) -> LoadResult:
    """Load every *.yaml / *.yml in `directory` (not recursive); broken files stay out."""
    folder = Path(directory)
    if not folder.is_dir():
        missing = AgreementError(str(folder), None, "no such directory")
        return LoadResult(PolicySet.of(()), [missing], [])
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    agreements: dict[str, Agreement] = {}
    errors: list[AgreementError] = []
    warnings: list[str] = []
    agencies = _as_set(known_agencies)
    texts: dict[str, bytes] = {}
    for path in files:
        content = path.read_bytes()
        outcome = _parse_unchanged(content, str(path), known_fields, agencies)
        warnings.extend(outcome.warnings)
        errors.extend(outcome.errors)
        agreement = outcome.agreement
        if agreement is None:
            continue
        if agreement.id in agreements:
            first = agreements[agreement.id].source
            parsed = parse_yaml(path.read_text("utf-8"))
            errors.append(
                AgreementError(
                    str(path),
                    parsed.line_of(("agreement",)),
                    f"duplicate agreement id {agreement.id!r}: already defined in {first}",
                    "agreement",
                    agreement.id,
                )
            )
            continue
        agreements[agreement.id] = agreement
        texts[agreement.id] = content
    networks, network_errors = load_networks(folder / NETWORKS_FOLDER)
    errors.extend(network_errors)
    for agreement_id, agreement in list(agreements.items()):
        unknown = sorted(n for n in agreement.networks if n not in networks and n != agreement_id)
        if unknown:
            parsed = parse_yaml(Path(agreement.source).read_text("utf-8"))
            key = "networks" if len(agreement.networks) > 1 else "network"
            errors.append(AgreementError(
                agreement.source, parsed.line_of((key,)),
                f"unknown network {unknown[0]!r}: declared networks are {', '.join(sorted(networks)) or 'none'}"
                f" (a network is declared in {NETWORKS_FOLDER}/<id>.yaml)",
                key, agreement_id,
            ))
            del agreements[agreement_id]
    errors.extend(_keep_training_apart(agreements, networks))
    kept = {a: texts[a] for a in agreements}
    return LoadResult(PolicySet.of(agreements.values(), networks.values()), errors, warnings, kept)


def _keep_training_apart(agreements: dict[str, Agreement], networks: dict[str, Network]) -> list[AgreementError]:
    """Refuse what would join a training network to a real one (app/policy/training.py); the rest serve."""
    errors = []
    for agreement_id, reason in training.mixed_agreements(agreements, networks).items():
        source = agreements.pop(agreement_id).source
        key = "networks"
        errors.append(AgreementError(source, parse_yaml(Path(source).read_text("utf-8")).line_of((key,)),
                                     reason, key, agreement_id))
    for network_id, reason in training.shared_agencies(agreements, networks).items():
        network = networks.pop(network_id)
        errors.append(AgreementError(network.source or network_id, None, reason, "members"))
        for agreement_id in [a.id for a in agreements.values() if network_id in a.networks]:
            agreements.pop(agreement_id)
    return errors


# A reload reads every file and re-parses only what changed: the same bytes parse to the same
# (immutable) agreement, so a process's reloads, and the apps the test suite starts, share the work.
@lru_cache(maxsize=256)
def _parse_unchanged(
    content: bytes, source: str, known_fields: frozenset[str], known_agencies: frozenset[str] | None
) -> ParsedAgreement:
    return parse_agreement(content, source, known_fields, known_agencies)


NETWORKS_FOLDER = "networks"


def load_networks(folder: Path) -> tuple[dict[str, Network], list[AgreementError]]:
    """Every network declared in `folder` (*.yaml); a missing folder declares none."""
    if not folder.is_dir():
        return {}, []
    networks: dict[str, Network] = {}
    errors: list[AgreementError] = []
    for path in sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()):
        content = path.read_bytes()
        network, found = _network_unchanged(content, str(path))
        errors.extend(found)
        if network is None:
            continue
        network, found = _with_conduct(network, content, folder)
        errors.extend(found)
        if network is None:
            continue
        if network.id in networks:
            parsed = parse_yaml(path.read_text("utf-8"))
            errors.append(AgreementError(
                str(path), parsed.line_of(("network",)),
                f"duplicate network id {network.id!r}: already defined in {networks[network.id].source}",
                "network",
            ))
            continue
        networks[network.id] = network
    return networks, errors


def _with_conduct(network: Network, content: bytes,
                  folder: Path) -> tuple[Network | None, tuple[AgreementError, ...]]:
    """The network with its code of conduct's texts read (outside the content cache: they are files of their own).

    A text that cannot be read keeps the whole network out, as a broken file would: nobody could accept it.
    """
    declared = _conduct_declared(content)
    if declared is None:
        return network, ()
    texts: list[tuple[str, str]] = []
    root = folder.resolve()
    for language, name in declared.text.items():
        path = (folder / name).resolve()
        if not path.is_relative_to(root):
            reason = "it is outside the networks folder"
        else:
            try:
                texts.append((language, path.read_text("utf-8").strip()))
                continue
            except FileNotFoundError:
                reason = "no such file"
            except (OSError, UnicodeDecodeError):
                reason = "not a readable UTF-8 file"
        at = ("code_of_conduct", "text", language)
        line = parse_yaml(content.decode("utf-8")).line_of(at)
        return None, (AgreementError(network.source or "", line, f"code of conduct {name!r}: {reason}",
                                     format_path(at)),)
    return _conduct_attached(network, declared.version, tuple(texts)), ()


@lru_cache(maxsize=64)
def _conduct_declared(content: bytes) -> documents.ConductDocument | None:
    return NetworkDocument.model_validate(parse_yaml(content.decode("utf-8")).data).code_of_conduct


@lru_cache(maxsize=64)
def _conduct_attached(network: Network, version: int, texts: tuple[tuple[str, str], ...]) -> Network:
    """The same object for the same network and texts, so a reload of unchanged files rebuilds nothing."""
    digest = hashlib.sha256(json.dumps([version, texts], ensure_ascii=False).encode()).hexdigest()
    return replace(network, conduct=Conduct(version, texts, digest))


@lru_cache(maxsize=64)
def _network_unchanged(content: bytes, source: str) -> tuple[Network | None, tuple[AgreementError, ...]]:
    """One network file's declaration, or its errors (cached by content, like agreements)."""
    try:
        parsed = parse_yaml(content.decode("utf-8"))
    except (UnicodeDecodeError, YamlSyntaxError) as exc:
        line = exc.line if isinstance(exc, YamlSyntaxError) else None
        reason = exc.reason if isinstance(exc, YamlSyntaxError) else "file is not UTF-8"
        return None, (AgreementError(source, line, reason),)
    try:
        document = NetworkDocument.model_validate(parsed.data)
    except ValidationError as exc:
        return None, tuple(
            AgreementError(source, parsed.line_of(at), _reason(item), format_path(at))
            for item in exc.errors()
            for at in [tuple(p for p in item["loc"] if p != "[key]")]
        )
    chair = document.protocol.meetings.chair
    if chair is not None and chair != document.coordinator and chair not in document.members:
        at = ("protocol", "meetings", "chair")
        return None, (AgreementError(
            source, parsed.line_of(at), f"the chair {chair!r} is not a member of the network "
            f"(members: {', '.join([document.coordinator, *document.members])})", format_path(at),
        ),)
    outsiders = [(i, j.agency) for i, j in enumerate(document.joint_controllers)
                 if j.agency != document.coordinator and j.agency not in document.members]
    if outsiders:
        where = ("joint_controllers", outsiders[0][0], "agency")
        return None, (AgreementError(
            source, parsed.line_of(where),
            f"the joint controller {outsiders[0][1]!r} is not a member of the network", format_path(where),
        ),)
    return Network(
        id=document.network, name=document.name, locales=tuple(document.locales),
        coordinator=document.coordinator, members=frozenset(document.members), agreements=(),
        source=source, protocol=protocol_of(document.protocol), accountability=_accountability(document),
        training=document.training,
    ), ()


def _contact(document: ContactDocument | None) -> Contact | None:
    if document is None:
        return None
    agency = document.agency if isinstance(document, JointControllerDocument) else None
    return Contact(name=document.name, contact=document.contact, address=document.address, agency=agency)


def _accountability(document: NetworkDocument) -> Accountability:
    transfers = document.transfers
    return Accountability(
        controller=_contact(document.controller),
        joint_controllers=tuple(c for j in document.joint_controllers if (c := _contact(j))),
        representative=_contact(document.representative),
        dpo=_contact(document.dpo),
        transfers=None if transfers is None else () if transfers == "none" else tuple(
            Transfer(t.recipient, t.country_code, t.safeguard, t.description) for t in transfers
        ),
    )
