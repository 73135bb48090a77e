"""Invalid rules: each names the character where it goes wrong and what was expected there.

The table gives, per rule, the offset a mission engineer must be pointed to and a
piece of the message; every error must also list expectations drawn from the
language's own vocabulary (never lark's terminal names), and its caret must sit
under the offending character. Hypothesis then holds the parser to raising nothing
but RuleSyntaxError, whatever text it is given.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests_rule_strategies import rules as rule_asts

from proseo.errors import ProseoError, RuleSyntaxError
from proseo.rules import parse, parse_simple

DELTA = "a delta (digits, optionally a blank and d|h|m|s|ms)"
POLICY = "a policy name"
AFTER_POLICY = "OR or ELSE or MANDATORY or OPTIONAL or MINCOVER or ';' or the end of the rule"
VOCABULARY = {
    "FOR",
    "SELECT",
    "OR",
    "ELSE",
    "MANDATORY",
    "OPTIONAL",
    "MINCOVER",
    "a product type",
    POLICY,
    DELTA,
    "a percentage 0..100",
    "'('",
    "')'",
    "','",
    "';'",
    "'/key:value'",
    "the end of the rule",
}

INVALID: list[tuple[str, int, str]] = [
    # -- incomplete rules: the offset is the end of the text
    ("", 0, "unexpected end of rule; expected FOR"),
    ("   ", 3, "unexpected end of rule; expected FOR"),
    ("FOR", 3, "expected a product type"),
    ("FOR AUX", 7, "expected SELECT"),
    ("FOR AUX SELECT", 14, f"expected {POLICY}"),
    ("FOR AUX SELECT ValIntersect", 27, "ValIntersect needs two deltas"),
    ("FOR AUX SELECT ValIntersect(", 28, f"expected {DELTA}"),
    ("FOR AUX SELECT ValIntersect(0", 29, "expected ','"),
    ("FOR AUX SELECT ValIntersect(0,", 30, f"expected {DELTA}"),
    ("FOR AUX SELECT ValIntersect(0, 0", 32, "expected ')'"),
    ("FOR AUX SELECT ValIntersect(0, 0) OR", 36, f"expected {POLICY}"),
    ("FOR AUX SELECT ValIntersect(0, 0) ELSE", 38, "expected FOR"),
    ("FOR AUX SELECT ValIntersect(0, 0);", 34, "unexpected end of rule; expected FOR"),  # no trailing ';'
    ("FOR AUX SELECT LastCreated MANDATORY;", 37, "expected FOR"),
    ("FOR AUX SELECT ValIntersect(0, 0) MINCOVER", 42, "expected '('"),
    ("FOR AUX SELECT ValIntersect(0, 0) MINCOVER(", 43, "expected a percentage 0..100"),
    ("FOR AUX SELECT LastCreated MINCOVER(5", 37, "expected ')'"),
    # -- keywords misplaced or glued
    ("SELECT AUX FOR LastCreated", 0, "unexpected 'SELECT'; expected FOR"),
    ("FORAUX SELECT LastCreated", 0, "unexpected 'FORAUX'; expected FOR"),
    ("(FOR AUX SELECT LastCreated)", 0, "expected FOR"),
    ("FOR AUX SELECTLastCreated", 8, "expected SELECT"),
    ("FOR AUX LastCreated", 8, "unexpected 'LastCreated'; expected SELECT"),
    ('FOR "AUX" SELECT LastCreated', 4, "expected a product type"),
    ("FOR AUX SELECT LastCreated FOR B SELECT LastCreated", 27, f"expected {AFTER_POLICY}"),
    ("FOR AUX SELECT LastCreated ELSE LastCreated", 32, "expected FOR"),
    ("FOR AUX SELECT LastCreated ELSE SELECT LastCreated", 32, "expected FOR"),
    ("FOR AUX SELECT LastCreated; ; FOR B SELECT LastCreated", 28, "unexpected ';'; expected FOR"),
    ("FOR AUX SELECT LastCreated, LatestValidity", 26, "unexpected ','"),
    ("FOR AUX SELECT LastCreated AND LatestValidity", 27, "unexpected 'AND'"),
    ("FOR AUX SELECT LastCreated OPTIONALLY", 27, "unexpected 'OPTIONALLY'"),
    ("FOR AUX SELECT LastCreated OR OR LastCreated", 30, "unknown policy 'OR'"),
    # -- policies
    ("FOR AUX SELECT Foo", 15, "unknown policy 'Foo'"),
    ("FOR AUX SELECT Foo OR LastCreated OPTIONAL", 15, "unknown policy 'Foo'"),  # the first error wins
    ("FOR AUX SELECT ValIntersects(0, 0)", 15, "unknown policy 'ValIntersects'"),
    ("FOR AUX SELECT Val Intersect(0, 0)", 15, "unknown policy 'Val'"),
    ("FOR AUX SELECT ValIntersect_x(0, 0)", 15, "unknown policy 'ValIntersect_x'"),
    ("FOR AUX SELECT 42", 15, "unknown policy '42'"),
    ("FOR AUX SELECT (0, 0)", 15, f"unexpected '('; expected {POLICY}"),
    ("FOR AUX SELECT LatestValidity(0, 0)", 29, "LatestValidity ignores the window and takes no deltas"),
    ("FOR AUX SELECT LastCreated(1 d, 1 d)", 26, "LastCreated ignores the window"),
    ("FOR AUX SELECT LatestStopValidity ()", 34, "LatestStopValidity ignores the window"),
    ("FOR AUX SELECT ValIntersect OR LatestValidity", 28, "ValIntersect needs two deltas (unexpected 'OR')"),
    ("FOR AUX SELECT ValIntersect MANDATORY", 28, "ValIntersect needs two deltas"),
    ("FOR AUX SELECT ValIntersect[0, 0]", 27, "needs two deltas (unexpected character '[')"),
    ("FOR AUX SELECT LatestValCover OR ValIntersect(0, 0)", 30, "LatestValCover needs two deltas"),
    # -- deltas
    ("FOR AUX SELECT ValIntersect(12h, 0)", 30, "unit 'h' must be separated from its number by a blank"),
    ("FOR AUX SELECT ValIntersect(0, 12h)", 33, "unit 'h' must be separated"),
    ("FOR AUX SELECT ValIntersect(1ms, 0)", 29, "unit 'ms' must be separated"),
    ("FOR AUX SELECT ValIntersect(-1, 0)", 28, f"unexpected character '-'; expected {DELTA}"),
    ("FOR AUX SELECT ValIntersect(0, -1 d)", 31, "unexpected character '-'"),
    ("FOR AUX SELECT ValIntersect(1.5, 0)", 29, "unexpected character '.'; expected ','"),
    ("FOR AUX SELECT ValIntersect(0 days, 0)", 30, "unexpected 'days'; expected ','"),
    ("FOR AUX SELECT ValIntersect(0 mm, 0)", 30, "unexpected 'mm'"),
    ("FOR AUX SELECT ValIntersect(0 h s, 0)", 32, "unexpected 's'"),
    ("FOR AUX SELECT ValIntersect(0\nh, 0)", 30, "unexpected 'h'"),  # the blank is a space or a tab
    ("FOR AUX SELECT ValIntersect(0)", 29, "unexpected ')'; expected ','"),
    ("FOR AUX SELECT ValIntersect(0, 0, 0)", 32, "unexpected ','; expected ')'"),
    ("FOR AUX SELECT ValIntersect(,0)", 28, f"expected {DELTA}"),
    ("FOR AUX SELECT ValIntersect(0 ,)", 31, f"expected {DELTA}"),
    ("FOR AUX SELECT ValIntersect(h, 0)", 28, "unexpected 'h'"),
    ("FOR AUX SELECT ValIntersect((0, 0)", 28, "unexpected '('"),
    ("FOR AUX SELECT ValIntersect(0, 0)) ", 33, "unexpected ')'"),
    ("FOR AUX SELECT ValIntersect(0, " + "9" * 5000 + " h)", 31, "a delta of 5000 digits is too large"),
    ("FOR AUX SELECT ValIntersect(" + "9" * 31 + ", 0)", 28, "a delta of 31 digits is too large"),
    # -- qualifiers
    ("FOR AUX SELECT LastCreated MINCOVER(101)", 36, "MINCOVER(101) is out of range; expected a percentage"),
    ("FOR AUX SELECT LastCreated MINCOVER(0101)", 36, "MINCOVER(0101) is out of range"),
    ("FOR AUX SELECT LastCreated MINCOVER(-5)", 36, "unexpected character '-'"),
    ("FOR AUX SELECT LastCreated MINCOVER(50.5)", 38, "expected ')'"),
    ("FOR AUX SELECT LastCreated MINCOVER 50", 36, "unexpected '50'; expected '('"),
    ("FOR AUX SELECT LastCreated MINCOVER()", 36, "expected a percentage 0..100"),
    ("FOR AUX SELECT LastCreated MANDATORY OPTIONAL", 37, "expected ';' or the end of the rule"),
    ("FOR AUX SELECT LastCreated OPTIONAL MINCOVER(5)", 36, "unexpected 'MINCOVER'"),
    ("FOR AUX SELECT LastCreated OPTIONAL ELSE FOR B SELECT LastCreated", 36, "unexpected 'ELSE'"),
    ("FOR AUX SELECT LastCreated OPTIONAL OR LastCreated", 36, "unexpected 'OR'"),
    # -- sources and filters
    ("FOR AUX / a:1 SELECT LastCreated", 8, "a filter is /key:value"),
    ("FOR AUX/a SELECT LastCreated", 7, "a filter is /key:value"),
    ("FOR AUX/a: SELECT LastCreated", 7, "with no blanks inside"),
    ("FOR AUX/:1 SELECT LastCreated", 7, "a filter is /key:value"),
    ("FOR AUX/a:1, b:2 SELECT LastCreated", 11, "unexpected ','; expected SELECT"),
    ("FOR AUX/a:1,b SELECT LastCreated", 11, "unexpected ','"),
    ("FOR AUX-1 SELECT LastCreated", 7, "unexpected character '-'"),
    ("FOR AUX.X SELECT LastCreated", 7, "unexpected character '.'"),
    # -- stray characters
    ("é", 0, "unexpected character 'é'; expected FOR"),
    ("FOR AUX SELECT LastCreated é", 27, "unexpected character 'é'"),
    ("FOR AUX SELECT LastCreated \x00", 27, f"expected {AFTER_POLICY}"),
    ("FOR ÄUX SELECT LastCreated", 4, "expected a product type"),
]


def test_the_table_is_large_and_has_no_duplicates() -> None:
    assert len(INVALID) >= 50
    assert len({text for text, _, _ in INVALID}) == len(INVALID)


@pytest.mark.parametrize(("text", "offset", "message"), INVALID, ids=[repr(r[0])[:60] for r in INVALID])
def test_invalid_rule_names_offset_and_expectation(text: str, offset: int, message: str) -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse(text)
    exc = info.value
    assert (exc.offset, message in str(exc)) == (offset, True), str(exc)
    assert str(exc).startswith(f"character {offset}: ")
    # What was expected is said in the language's words, never in lark's terminal names.
    assert exc.expected, str(exc)
    for item in exc.expected:
        assert (
            item in VOCABULARY
            or item.startswith("a policy name (LatestValidity")
            or (
                item.startswith("a policy name (BestCenteredCover, ")
                and "ValIntersectWithoutDuplicates" in item
            )
        ), item
    assert "$END" not in str(exc) and "WINDOWED" not in str(exc) and "LPAR" not in str(exc)
    text_line, caret_line = exc.caret().rsplit("\n", 1)
    assert text_line == text and caret_line == " " * offset + "^"
    assert isinstance(exc, ProseoError) and exc.exit_code == 2


def test_an_unknown_policy_lists_the_known_ones() -> None:
    with pytest.raises(RuleSyntaxError) as info:
        parse("FOR AUX SELECT LatestValidty")
    (listing,) = info.value.expected
    assert "LatestValidity" in listing and "LargestOverlap85" in listing and "LastCreated" in listing


def test_parse_simple_refuses_several_rules_where_one_is_expected() -> None:
    text = "FOR A SELECT LastCreated; FOR B SELECT LastCreated"
    with pytest.raises(RuleSyntaxError) as info:
        parse_simple(text)
    assert info.value.offset == text.index(";") and "one simple rule" in str(info.value)


@pytest.mark.parametrize("value", [None, 42, b"FOR A SELECT LastCreated", ["FOR"]])
def test_a_rule_must_be_text(value: object) -> None:
    with pytest.raises(RuleSyntaxError, match="a rule must be text"):
        parse(value)  # type: ignore[arg-type]


# --- property tests -------------------------------------------------------------------

RULE_CHARS = string.ascii_letters + string.digits + " _/:,;()\t\n.-é"


def _check(text: str) -> None:
    """Either a rule, or a RuleSyntaxError pointing inside (or just past) the text."""
    try:
        rule = parse(text)
    except RuleSyntaxError as exc:
        assert 0 <= exc.offset <= len(text)
        assert str(exc).startswith(f"character {exc.offset}: ")
        assert exc.caret().endswith("^")
    else:
        assert parse(str(rule)) == rule


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_arbitrary_text_raises_only_rule_syntax_errors(text: str) -> None:
    _check(text)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=RULE_CHARS))
def test_rule_like_text_raises_only_rule_syntax_errors(text: str) -> None:
    _check(text)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A valid rule's text with a few characters deleted, inserted or replaced."""
    text = str(draw(rule_asts()))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["delete", "insert", "replace", "swap_case"]))
        piece = draw(st.sampled_from([*RULE_CHARS, "FOR ", " OR ", "(", ")", ";", " ELSE ", "12h"]))
        if action == "delete":
            text = text[:pos] + text[pos + 1 :]
        elif action == "insert":
            text = text[:pos] + piece + text[pos:]
        elif action == "replace":
            text = text[:pos] + piece + text[pos + 1 :]
        else:
            text = text[:pos] + text[pos:].swapcase()
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_of_valid_rules_raise_only_rule_syntax_errors(text: str) -> None:
    _check(text)
