"""Read YAML while remembering where every value came from.

Pydantic reports errors as a location tuple (``("product_classes", "L2", "processor")``);
operators need a file and a line. :class:`YamlDocument` keeps a map from such
locations to line numbers, refuses duplicate keys (plain PyYAML silently keeps the
last one), expands ``${VAR}`` / ``${VAR:-default}`` in strings, and uses YAML 1.2
booleans only, so ``NO`` (a mode, a country) stays a string.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from proseo.errors import ConfigError, ConfigIssue

Loc = tuple[str | int, ...]

_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader whose booleans are only true/false (YAML 1.2 core schema)."""


_Yaml12Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def format_loc(loc: Iterable[str | int]) -> str:
    """Render a location as ``a.b[2].c`` (the form every error message uses)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class YamlDocument:
    """Parsed YAML data plus the line of every mapping key and sequence item."""

    file: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """Line of the deepest part of ``loc`` that exists in the document."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), None)

    def resolve(self, loc: Sequence[Any]) -> tuple[Loc, int | None]:
        """Map a pydantic error location onto the document.

        Pydantic inserts union and validator tags into locations; parts that do not
        name anything in the data are dropped, except a final key (a missing field).
        """
        path: list[str | int] = []
        node: Any = self.data
        parts = list(loc)
        for i, part in enumerate(parts):
            in_dict = isinstance(node, dict) and part in node
            in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            if in_dict or in_list:
                node = node[part]
                path.append(part)
            elif i == len(parts) - 1 and isinstance(part, str) and isinstance(node, dict):
                return (*path, part), self.line_of(path)
        return tuple(path), self.line_of(path)

    def issue(self, loc: Sequence[Any], message: str) -> ConfigIssue:
        path, line = self.resolve(loc)
        return ConfigIssue(self.file, format_loc(path), line, message)


def load_yaml(path: str | Path, *, text: str | None = None, expand_env: bool = True) -> YamlDocument:
    """Parse one YAML file into a :class:`YamlDocument`; raise ConfigError on any problem."""
    file = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([ConfigIssue(file, "", None, f"cannot read file: {exc}")]) from exc
    try:
        root = yaml.compose(text, Loader=_Yaml12Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = f", column {mark.column + 1}" if mark else ""
        msg = f"YAML syntax error{col}: {exc.problem or exc.context}"
        raise ConfigError([ConfigIssue(file, "", line, msg)]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(file, "", None, f"YAML error: {exc}")]) from exc
    if root is None:
        raise ConfigError([ConfigIssue(file, "", None, "the file is empty")])

    doc = YamlDocument(file=file, data=None)
    issues: list[ConfigIssue] = []
    builder = _Builder(doc, issues, expand_env)
    doc.data = builder.build(root, ())
    if issues:
        raise ConfigError(issues)
    return doc


class _Builder:
    """Builds Python data from a node tree, recording lines, refusing duplicate keys."""

    def __init__(self, doc: YamlDocument, issues: list[ConfigIssue], expand_env: bool) -> None:
        self.doc, self.issues, self.expand_env = doc, issues, expand_env
        self.loader = _Yaml12Loader("")

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        doc = self.doc
        doc.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        value = self.loader.construct_object(node, deep=True)
        if self.expand_env and isinstance(value, str) and "$" in value:
            value = _expand(value, loc, doc, self.issues, node.start_mark.line + 1)
        return value

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[str, Any]:
        doc, result = self.doc, {}
        self.loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True)
            key_line = key_node.start_mark.line + 1
            if isinstance(key, bool) or not isinstance(key, str | int):
                self.issues.append(
                    ConfigIssue(
                        doc.file,
                        format_loc(loc),
                        key_line,
                        f"mapping keys must be strings, not {type(key).__name__}",
                    )
                )
                continue
            key = str(key)
            if key in result:
                first = doc.lines.get((*loc, key))
                self.issues.append(
                    ConfigIssue(
                        doc.file,
                        format_loc((*loc, key)),
                        key_line,
                        f"duplicate key {key!r} (first defined on line {first})",
                    )
                )
                continue
            doc.lines[(*loc, key)] = key_line
            result[key] = self.build(value_node, (*loc, key))
        return result


def _expand(value: str, loc: Loc, doc: YamlDocument, issues: list[ConfigIssue], line: int) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}``; ``$$`` is a literal dollar sign."""

    def repl(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        issues.append(
            ConfigIssue(
                doc.file,
                format_loc(loc),
                line,
                f"environment variable {name} is not set and has no default (write ${{{name}:-default}})",
            )
        )
        return match.group(0)

    return _ENV_REF.sub(repl, value)
