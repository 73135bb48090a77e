"""Read YAML while remembering where every value came from.

Pydantic reports errors as a location tuple (``("product_classes", "L2", "processor")``);
operators need a file and a line. :class:`YamlDocument` keeps a map from such
locations to line numbers, refuses duplicate keys (plain PyYAML silently keeps the
last one), expands ``${VAR}`` / ``${VAR:-default}`` in strings, and uses YAML 1.2
booleans only, so ``NO`` (a mode, a country) stays a string.

Files reach us over the REST API too, so hostile YAML must end in a located
:class:`ConfigError` quickly: nesting is limited to :data:`MAX_DEPTH` levels (while
composing and while building, so neither recurses into a RecursionError), values
reached through aliases count against :data:`MAX_ALIAS_NODES` (an alias bomb of 322
bytes would otherwise expand to millions of values), a value that contains itself is
refused, text with NUL characters (which PostgreSQL cannot store) is refused, and
anything YAML cannot construct (``!!python/...`` and other unknown tags,
impossible timestamps, integers beyond Python's digit limit) names its line.
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

#: Deepest nesting of mappings and lists (a mission file needs fewer than ten levels).
MAX_DEPTH = 64
#: Values reached through aliases, counted as often as they are reached.
MAX_ALIAS_NODES = 10_000

_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"


class _TooDeep(yaml.MarkedYAMLError):
    """Nesting beyond MAX_DEPTH found while composing."""


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader whose booleans are only true/false (YAML 1.2 core schema), nesting bounded."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _TooDeep(problem=f"values nested deeper than {MAX_DEPTH} levels", problem_mark=mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


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
        if isinstance(exc, _TooDeep):
            msg = f"{exc.problem}{col}"
        raise ConfigError([ConfigIssue(file, "", line, msg)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(file, "", None, f"YAML error: {exc}")]) from exc
    if root is None:
        raise ConfigError([ConfigIssue(file, "", None, "the file is empty")])

    doc = YamlDocument(file=file, data=None)
    issues: list[ConfigIssue] = []
    builder = _Builder(doc, issues, expand_env)
    try:
        doc.data = builder.build(root, ())
    except _Refused as exc:
        raise ConfigError([exc.issue]) from None
    if issues:
        raise ConfigError(issues)
    return doc


_BAD = object()  # a scalar YAML could not construct (the issue is already recorded)


class _Refused(Exception):
    """Building stops at once: the document is hostile (too deep, self-containing, a bomb)."""

    def __init__(self, issue: ConfigIssue) -> None:
        super().__init__(str(issue))
        self.issue = issue


class _Builder:
    """Builds Python data from a node tree, recording lines, refusing duplicate keys.

    Aliases make the node tree a graph: a node built a second time was reached through
    an alias, and each such visit counts against MAX_ALIAS_NODES; a node met again while
    it is still being built contains itself.
    """

    def __init__(self, doc: YamlDocument, issues: list[ConfigIssue], expand_env: bool) -> None:
        self.doc, self.issues, self.expand_env = doc, issues, expand_env
        self.loader = _Yaml12Loader("")
        self.seen: set[int] = set()
        self.open: set[int] = set()
        self.repeats = 0

    def _refuse(self, node: yaml.Node, loc: Loc, message: str) -> _Refused:
        line = self.doc.line_of(loc) if loc else node.start_mark.line + 1
        return _Refused(ConfigIssue(self.doc.file, format_loc(loc), line, message))

    def _count(self, node: yaml.Node, loc: Loc) -> None:
        if len(loc) >= MAX_DEPTH:
            raise self._refuse(node, loc, f"values nested deeper than {MAX_DEPTH} levels")
        if id(node) in self.open:
            anchor = node.start_mark.line + 1
            raise self._refuse(node, loc, f"this value contains itself (alias of the node on line {anchor})")
        if id(node) in self.seen:
            self.repeats += 1
            if self.repeats > MAX_ALIAS_NODES:
                raise self._refuse(
                    node,
                    loc,
                    f"aliases expand to more than {MAX_ALIAS_NODES} values; "
                    "write the values out or use fewer aliases",
                )
        else:
            self.seen.add(id(node))

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self._count(node, loc)
        self.doc.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            value = self._scalar(node, loc)
            return None if value is _BAD else value
        tag = _MAP if isinstance(node, yaml.MappingNode) else _SEQ
        if node.tag != tag:
            self._issue(node, loc, f"unsupported tag {node.tag!r} (only plain mappings and lists)")
            return None
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, loc)
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def _issue(self, node: yaml.Node, loc: Loc, message: str) -> None:
        self.issues.append(ConfigIssue(self.doc.file, format_loc(loc), node.start_mark.line + 1, message))

    def _scalar(self, node: yaml.ScalarNode, loc: Loc) -> Any:
        """The scalar's value, or _BAD (with an issue) when YAML cannot construct it."""
        try:
            value = self.loader.construct_object(node, deep=True)
        except Exception as exc:  # PyYAML's constructors raise many kinds; each is a bad value here
            reason = exc.problem if isinstance(exc, yaml.MarkedYAMLError) else f"{type(exc).__name__}: {exc}"
            shown = f"{node.value[:40]!r} " if node.value else ""
            self._issue(node, loc, f"cannot read the value {shown}(tag {node.tag}): {reason}")
            return _BAD
        if isinstance(value, str) and "\x00" in value:
            self._issue(node, loc, f"NUL character (\\0) at character {value.index(chr(0))} of the value")
            return _BAD
        if self.expand_env and isinstance(value, str) and "$" in value:
            value = _expand(value, loc, self.doc, self.issues, node.start_mark.line + 1)
        return value

    def _key(self, key_node: yaml.Node, loc: Loc) -> str | None:
        if not isinstance(key_node, yaml.ScalarNode):
            self._issue(key_node, loc, "mapping keys must be strings, not a collection")
            return None
        key = self._scalar(key_node, loc)
        if key is _BAD:
            return None
        if isinstance(key, bool) or not isinstance(key, str | int):
            self._issue(key_node, loc, f"mapping keys must be strings, not {type(key).__name__}")
            return None
        return str(key)

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[str, Any]:
        """Merge keys (``<<``) first, so explicit keys win and keep their own lines."""
        doc, result = self.doc, {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                self._merge(value_node, loc, merged)
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                continue
            key = self._key(key_node, loc)
            if key is None:
                continue
            key_line = key_node.start_mark.line + 1
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
        if not merged:
            return result
        return {**{k: v for k, v in merged.items() if k not in result}, **result}

    def _merge(self, value_node: yaml.Node, loc: Loc, into: dict[str, Any]) -> None:
        """``<<: *a`` or ``<<: [*a, *b]``: the first source to give a key wins."""
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        if not all(isinstance(source, yaml.MappingNode) for source in sources):
            self._issue(value_node, loc, "a merge key (<<) takes a mapping or a list of mappings")
            return
        if isinstance(value_node, yaml.SequenceNode):
            self._count(value_node, loc)
        for source in sources:
            for key, value in (self.build(source, loc) or {}).items():
                into.setdefault(key, value)


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
