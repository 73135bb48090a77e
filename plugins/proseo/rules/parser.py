"""Parse selection-rule text into :mod:`proseo.rules.ast` objects.

The grammar is LALR (lark) with a contextual lexer, so a product type named like a
keyword is still a product type where a product type is expected. Policy names are
terminals of their own (windowed ones take deltas, windowless ones refuse them), so a
wrong name or a misplaced ``(`` is reported where it is written, never later. Every
failure is a :class:`RuleSyntaxError` with the character offset and what the parser
expected there; nothing else escapes (a hypothesis test holds the parser to that).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from proseo.errors import RuleSyntaxError
from proseo.rules.ast import (
    POLICY_SPELLINGS,
    WINDOWLESS,
    Alternative,
    Delta,
    Policy,
    Qualifier,
    QualifierKind,
    Rule,
    SimpleRule,
    Source,
    Unit,
)

_KW = "(?![A-Za-z0-9_])"
_WINDOWED = sorted((s for s, p in POLICY_SPELLINGS.items() if p not in WINDOWLESS), key=len, reverse=True)
_WINDOWLESS = sorted((s for s, p in POLICY_SPELLINGS.items() if p in WINDOWLESS), key=len, reverse=True)
GRAMMAR = rf"""
start: simple_rule (SEMICOLON simple_rule)*
simple_rule: alternative (ELSE alternative)* qualifier?
alternative: FOR SOURCE SELECT policy (OR policy)*
policy: WINDOWED LPAR DELTA COMMA DELTA RPAR | WINDOWLESS
qualifier: MANDATORY | OPTIONAL | MINCOVER LPAR PERCENT RPAR

FOR: /FOR{_KW}/i
SELECT: /SELECT{_KW}/i
OR: /OR{_KW}/i
ELSE: /ELSE{_KW}/i
MANDATORY: /MANDATORY{_KW}/i
OPTIONAL: /OPTIONAL{_KW}/i
MINCOVER: /MINCOVER{_KW}/i
WINDOWED: /(?:{"|".join(_WINDOWED)}){_KW}/i
WINDOWLESS: /(?:{"|".join(_WINDOWLESS)}){_KW}/i
SOURCE: /[A-Za-z0-9_]+(?:\/[A-Za-z0-9_]+:[^\s,;()]+(?:,[A-Za-z0-9_]+:[^\s,;()]+)*)?/
DELTA: /[0-9]+(?:[ \t]+(?:ms|d|h|m|s){_KW})?/i
PERCENT: /0*(?:100|[1-9]?[0-9])(?![0-9])/
LPAR: "("
RPAR: ")"
COMMA: ","
SEMICOLON: ";"
%ignore /[ \t\r\n]+/
"""

_POLICY_LIST = "a policy name (" + ", ".join(sorted({p.value for p in POLICY_SPELLINGS.values()})) + ")"
_DESCRIBE = {
    "FOR": "FOR",
    "SELECT": "SELECT",
    "WINDOWED": "a policy name",
    "WINDOWLESS": "a policy name",
    "OR": "OR",
    "ELSE": "ELSE",
    "MANDATORY": "MANDATORY",
    "OPTIONAL": "OPTIONAL",
    "MINCOVER": "MINCOVER",
    "SOURCE": "a product type",
    "DELTA": "a delta (digits, optionally a blank and d|h|m|s|ms)",
    "PERCENT": "a percentage 0..100",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "SEMICOLON": "';'",
    "$END": "the end of the rule",
}
_WORD = re.compile(r"[^\s,;()]+")
_UNIT = re.compile(r"(?:ms|d|h|m|s)$", re.IGNORECASE)
_LAST_WORD = re.compile(r"(?<![A-Za-z0-9_])([A-Za-z][A-Za-z0-9]*)\s*$")


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(GRAMMAR, parser="lalr", lexer="contextual", maybe_placeholders=False)


def _expected(names: set[str] | frozenset[str]) -> list[str]:
    """Human descriptions of the acceptable terminals, in grammar order, without repeats."""
    return list(dict.fromkeys(_DESCRIBE[n] for n in _DESCRIBE if n in names))


def _acceptable(exc: UnexpectedInput) -> set[str]:
    """Terminals the parser could take at the error, ``$END`` included where it fits."""
    interactive = getattr(exc, "interactive_parser", None)
    if interactive is not None:
        try:
            return set(interactive.accepts())
        except LarkError:  # pragma: no cover - defensive
            pass
    found: Any = (
        getattr(exc, "accepts", None) or getattr(exc, "expected", None) or getattr(exc, "allowed", ())
    )
    return set(found)


def _position(text: str, exc: UnexpectedInput) -> tuple[int, str]:
    """Where lark stopped, and what it found there."""
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        return len(text), "unexpected end of rule"
    if isinstance(exc, UnexpectedToken):
        return exc.token.start_pos or 0, f"unexpected {str(exc.token)!r}"
    pos = getattr(exc, "pos_in_stream", 0) or 0
    return pos, f"unexpected character {text[pos]!r}" if pos < len(text) else "unexpected end of rule"


def _syntax_error(text: str, exc: UnexpectedInput) -> RuleSyntaxError:
    """Turn lark's exception into an offset, a reason and what was expected there.

    The common mistakes get a reason in the language's terms instead of "unexpected X".
    """
    names = _acceptable(exc)
    pos, found = _position(text, exc)
    word = _WORD.match(text, pos)
    previous = _LAST_WORD.search(text, max(0, pos - 64), pos)
    spelled = POLICY_SPELLINGS.get(previous.group(1).lower()) if previous else None
    if names == {"SELECT"} and text.startswith("/", pos):
        reason = "a filter is /key:value[,key:value...] with no blanks inside"
        return RuleSyntaxError(text, pos, reason, ["SELECT", "'/key:value'"])
    if word and names & {"WINDOWED", "WINDOWLESS"}:
        return RuleSyntaxError(text, pos, f"unknown policy {word.group()!r}", [_POLICY_LIST])
    if word and names & {"COMMA", "RPAR"} and pos and text[pos - 1].isdigit() and _UNIT.match(word.group()):
        reason = f"unit {word.group()!r} must be separated from its number by a blank (as in '12 h')"
        return RuleSyntaxError(text, pos, reason, _expected(names))
    if word and "PERCENT" in names and word.group().isdigit():
        reason = f"MINCOVER({word.group()}) is out of range"
        return RuleSyntaxError(text, pos, reason, [_DESCRIBE["PERCENT"]])
    if spelled is not None and names == {"LPAR"}:
        return RuleSyntaxError(text, pos, f"{spelled.value} needs two deltas ({found})", ["'('"])
    if spelled in WINDOWLESS and "OR" in names and text.startswith("(", pos):
        reason = f"{spelled.value} ignores the window and takes no deltas"
        return RuleSyntaxError(text, pos, reason, _expected(names))
    return RuleSyntaxError(text, pos, found, _expected(names))


#: Longest delta number: 30 digits is far beyond any calendar (timedelta.max is 17 digits of
#: milliseconds, and larger deltas are clamped), and keeps int() below Python's digit limit.
MAX_DELTA_DIGITS = 30


def _tree(text: str) -> Tree:
    if not isinstance(text, str):
        raise RuleSyntaxError(str(text), 0, f"a rule must be text, not {type(text).__name__}")
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    except (LarkError, RecursionError) as exc:  # pragma: no cover - defensive
        raise RuleSyntaxError(text, 0, f"cannot parse: {exc}") from exc
    for token in tree.scan_values(lambda v: isinstance(v, Token) and v.type == "DELTA"):
        digits = str(token).split()[0]
        if len(digits.lstrip("0")) > MAX_DELTA_DIGITS:
            reason = f"a delta of {len(digits)} digits is too large (at most {MAX_DELTA_DIGITS})"
            raise RuleSyntaxError(text, token.start_pos or 0, reason, [_DESCRIBE["DELTA"]])
    return tree


def parse(text: str) -> Rule:
    """Parse a rule text; raises RuleSyntaxError (and nothing else) on any problem."""
    tree = _tree(text)
    return Rule(tuple(_simple_rule(node) for node in tree.children if isinstance(node, Tree)))


def parse_simple(text: str) -> SimpleRule:
    """Parse text that must hold exactly one simple rule."""
    rule = parse(text)
    if len(rule.rules) != 1:
        raise RuleSyntaxError(
            text, text.index(";"), "expected one simple rule, found several", [_DESCRIBE["$END"]]
        )
    return rule.rules[0]


def source_offsets(text: str) -> list[tuple[Source, int]]:
    """Every source a rule names, in written order, with the character offset of its product type.

    Configuration checks use the offsets to point at an unknown class.
    """
    tree = _tree(text)
    return [(_source(token), token.start_pos or 0) for token in tree.scan_values(_is_source)]


def _is_source(value: object) -> bool:
    return isinstance(value, Token) and value.type == "SOURCE"


def _simple_rule(node: Tree) -> SimpleRule:
    alternatives = []
    qualifier = Qualifier()
    for child in node.children:
        if isinstance(child, Tree) and child.data == "alternative":
            alternatives.append(_alternative(child))
        elif isinstance(child, Tree) and child.data == "qualifier":
            qualifier = _qualifier(child)
    return SimpleRule(tuple(alternatives), qualifier)


def _alternative(node: Tree) -> Alternative:
    source = next(c for c in node.children if _is_source(c))
    chain = tuple(_policy(c) for c in node.children if isinstance(c, Tree))
    return Alternative(_source(source), chain)  # type: ignore[arg-type]


def _source(token: Token) -> Source:
    product_type, _, rest = str(token).partition("/")
    filters = tuple(
        (key, value) for key, _, value in (item.partition(":") for item in rest.split(",") if rest)
    )
    return Source(product_type, filters)


def _policy(node: Tree) -> Policy:
    tokens = [c for c in node.children if isinstance(c, Token)]
    name = POLICY_SPELLINGS[str(tokens[0]).lower()]
    deltas = [_delta(t) for t in tokens if t.type == "DELTA"]
    return Policy(name, (deltas[0], deltas[1])) if deltas else Policy(name)


def _delta(token: Token) -> Delta:
    parts = str(token).split()
    return Delta(int(parts[0]), Unit(parts[1].lower()) if len(parts) > 1 else Unit.D)


def _qualifier(node: Tree) -> Qualifier:
    tokens = [c for c in node.children if isinstance(c, Token)]
    kind = QualifierKind(tokens[0].type)
    if kind is not QualifierKind.MINCOVER:
        return Qualifier(kind)
    return Qualifier(kind, int(str(next(t for t in tokens if t.type == "PERCENT"))))
