"""Parse selection-rule text into :mod:`proseo.rules.ast` objects.

The grammar is LALR (lark) with a contextual lexer, so a product type named like a
keyword is still a product type where a product type is expected. Every failure is
a :class:`RuleSyntaxError` with the character offset and what the parser expected
there; nothing else escapes (a hypothesis test holds the parser to that).
"""

from __future__ import annotations

from functools import lru_cache

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

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
GRAMMAR = rf"""
start: simple_rule (SEMICOLON simple_rule)*
simple_rule: alternative (ELSE alternative)* qualifier?
alternative: FOR SOURCE SELECT policy (OR policy)*
policy: POLICY (LPAR DELTA COMMA DELTA RPAR)?
qualifier: MANDATORY | OPTIONAL | MINCOVER LPAR PERCENT RPAR

FOR: /FOR{_KW}/i
SELECT: /SELECT{_KW}/i
OR: /OR{_KW}/i
ELSE: /ELSE{_KW}/i
MANDATORY: /MANDATORY{_KW}/i
OPTIONAL: /OPTIONAL{_KW}/i
MINCOVER: /MINCOVER{_KW}/i
SOURCE: /[A-Za-z0-9_]+(?:\/[A-Za-z0-9_]+:[^\s,;()]+(?:,[A-Za-z0-9_]+:[^\s,;()]+)*)?/
POLICY: /[A-Za-z][A-Za-z0-9]*/
DELTA: /[0-9]+(?:[ \t]+(?:ms|d|h|m|s){_KW})?/i
PERCENT: /[0-9]+/
LPAR: "("
RPAR: ")"
COMMA: ","
SEMICOLON: ";"
%ignore /[ \t\r\n]+/
"""

_DESCRIBE = {
    "FOR": "FOR",
    "SELECT": "SELECT",
    "OR": "OR",
    "ELSE": "ELSE",
    "MANDATORY": "MANDATORY",
    "OPTIONAL": "OPTIONAL",
    "MINCOVER": "MINCOVER",
    "SOURCE": "a product type",
    "POLICY": "a policy name",
    "DELTA": "a delta (digits, optionally a blank and d|h|m|s|ms)",
    "PERCENT": "a percentage 0..100",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "SEMICOLON": "';'",
    "$END": "the end of the rule",
}
_ORDER = list(_DESCRIBE)


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(GRAMMAR, parser="lalr", lexer="contextual", maybe_placeholders=False)


def _expected(names: set[str] | frozenset[str] | None) -> list[str]:
    known = [n for n in _ORDER if n in (names or ())]
    return [_DESCRIBE[n] for n in known]


def _syntax_error(text: str, exc: UnexpectedInput) -> RuleSyntaxError:
    if isinstance(exc, UnexpectedEOF):
        return RuleSyntaxError(text, len(text), "unexpected end of rule", _expected(set(exc.expected)))
    if isinstance(exc, UnexpectedToken):
        token: Token = exc.token
        if token.type == "$END":
            return RuleSyntaxError(
                text, len(text), "unexpected end of rule", _expected(exc.accepts or exc.expected)
            )
        return RuleSyntaxError(
            text, token.start_pos or 0, f"unexpected {str(token)!r}", _expected(exc.accepts or exc.expected)
        )
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        return RuleSyntaxError(text, pos, f"unexpected character {text[pos]!r}", _expected(exc.allowed))
    return RuleSyntaxError(text, getattr(exc, "pos_in_stream", 0) or 0, str(exc))


def parse(text: str) -> Rule:
    """Parse a rule text; raises RuleSyntaxError (and nothing else) on any problem."""
    if not isinstance(text, str):
        raise RuleSyntaxError(str(text), 0, f"a rule must be text, not {type(text).__name__}")
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    except (LarkError, RecursionError) as exc:  # pragma: no cover - defensive
        raise RuleSyntaxError(text, 0, f"cannot parse: {exc}") from exc
    return Rule(tuple(_simple_rule(text, node) for node in tree.children if isinstance(node, Tree)))


def parse_simple(text: str) -> SimpleRule:
    """Parse text that must hold exactly one simple rule."""
    rule = parse(text)
    if len(rule.rules) != 1:
        raise RuleSyntaxError(text, text.index(";"), "expected one simple rule, found several")
    return rule.rules[0]


def _simple_rule(text: str, node: Tree) -> SimpleRule:
    alternatives = []
    qualifier = Qualifier()
    for child in node.children:
        if isinstance(child, Tree) and child.data == "alternative":
            alternatives.append(_alternative(text, child))
        elif isinstance(child, Tree) and child.data == "qualifier":
            qualifier = _qualifier(text, child)
    return SimpleRule(tuple(alternatives), qualifier)


def _alternative(text: str, node: Tree) -> Alternative:
    tokens = [c for c in node.children if isinstance(c, Token)]
    source = _source(next(t for t in tokens if t.type == "SOURCE"))
    chain = tuple(_policy(text, c) for c in node.children if isinstance(c, Tree))
    return Alternative(source, chain)


def _source(token: Token) -> Source:
    product_type, _, rest = str(token).partition("/")
    filters = tuple(tuple(item.split(":", 1)) for item in rest.split(",")) if rest else ()
    return Source(product_type, filters)  # type: ignore[arg-type]


def _policy(text: str, node: Tree) -> Policy:
    tokens = [c for c in node.children if isinstance(c, Token)]
    name_token = tokens[0]
    name = POLICY_SPELLINGS.get(str(name_token).lower())
    if name is None:
        raise RuleSyntaxError(
            text,
            name_token.start_pos or 0,
            f"unknown policy {str(name_token)!r}",
            ["a policy name (" + ", ".join(sorted({p.value for p in POLICY_SPELLINGS.values()})) + ")"],
        )
    deltas_tokens = [t for t in tokens if t.type == "DELTA"]
    if name in WINDOWLESS and deltas_tokens:
        lpar = next(t for t in tokens if t.type == "LPAR")
        raise RuleSyntaxError(
            text,
            lpar.start_pos or 0,
            f"{name.value} ignores the window and takes no deltas",
            ["OR", "ELSE", "a qualifier", "';'", "the end of the rule"],
        )
    if name not in WINDOWLESS and not deltas_tokens:
        after = name_token.end_pos or 0
        raise RuleSyntaxError(text, after, f"{name.value} needs two deltas", ["'('"])
    if not deltas_tokens:
        return Policy(name)
    return Policy(name, (_delta(deltas_tokens[0]), _delta(deltas_tokens[1])))


def _delta(token: Token) -> Delta:
    parts = str(token).split()
    return Delta(int(parts[0]), Unit(parts[1].lower()) if len(parts) > 1 else Unit.D)


def _qualifier(text: str, node: Tree) -> Qualifier:
    tokens = [c for c in node.children if isinstance(c, Token)]
    kind = QualifierKind(tokens[0].type)
    if kind is not QualifierKind.MINCOVER:
        return Qualifier(kind)
    percent = next(t for t in tokens if t.type == "PERCENT")
    value = int(str(percent))
    if not 0 <= value <= 100:
        raise RuleSyntaxError(
            text, percent.start_pos or 0, f"MINCOVER({value}) is out of range", ["a percentage 0..100"]
        )
    return Qualifier(kind, value)
