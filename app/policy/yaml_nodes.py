"""Parse YAML keeping its node tree, so that a path like rules[2].view maps to a line."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from app.policy.documents import VIEW_SHAPE_TAGS

PathItem = str | int
Path = tuple[PathItem, ...]


class YamlSyntaxError(ValueError):
    """The text is not YAML; `line` is 1-based when known."""

    def __init__(self, reason: str, line: int | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


@dataclass(frozen=True, slots=True)
class ParsedYaml:
    data: Any
    root: yaml.Node | None

    def line_of(self, path: Sequence[PathItem]) -> int | None:
        return line_of(self.root, path)


# libyaml's parser when PyYAML has it (its wheels do): the same nodes and marks, several times faster.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str) -> ParsedYaml:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        line = mark.line + 1 if mark else None
        raise YamlSyntaxError(f"YAML syntax error: {reason}", line) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(f"YAML syntax error: {exc}", None) from exc
    finally:
        loader.dispose()
    return ParsedYaml(data, root)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def line_of(root: yaml.Node | None, path: Sequence[PathItem]) -> int | None:
    """Line of the deepest node on `path`: a mapping entry's key, a list item itself."""
    if root is None:
        return None
    node, line = root, _line(root)
    for item in path:
        if isinstance(item, str) and item in VIEW_SHAPE_TAGS:
            continue
        if isinstance(node, yaml.MappingNode):
            found = next(
                (
                    (k, v)
                    for k, v in node.value
                    if isinstance(k, yaml.ScalarNode) and k.value == str(item)
                ),
                None,
            )
            if found is None:
                return line
            node, line = found[1], _line(found[0])
        elif isinstance(node, yaml.SequenceNode) and isinstance(item, int):
            if not 0 <= item < len(node.value):
                return line
            node = node.value[item]
            line = _line(node)
        else:
            return line
    return line


def duplicate_keys(node: yaml.Node | None, path: Path = ()) -> Iterator[tuple[Path, int, str]]:
    """Mapping keys given twice (YAML keeps the last silently; an agreement must not)."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                yield path + (name,), _line(key), name
            seen.add(name)
            yield from duplicate_keys(value, path + (name,))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from duplicate_keys(item, path + (index,))


def format_path(path: Sequence[PathItem]) -> str:
    """('rules', 2, 'legal_basis') -> 'rules[2].legal_basis'."""
    text = ""
    for item in path:
        if isinstance(item, int):
            text += f"[{item}]"
        elif item not in VIEW_SHAPE_TAGS:
            text += f".{item}" if text else item
    return text
