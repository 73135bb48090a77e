"""Deciding an ``any()`` predicate's ``att/Name`` conditions in Python, per attribute name.

The translation asks, for each attribute a predicate mentions, whether the predicate is
already true or false whatever the value (then no SQL is needed for it), and whether it
could hold for an attribute it does *not* mention (then the attributes cannot be
enumerated, and the filter is refused).
"""

from __future__ import annotations

from proseo.interfaces.odata_ast import (
    And,
    AttributeRef,
    Compare,
    CompareOp,
    Expr,
    In,
    Literal,
    LiteralType,
    Not,
    Or,
    StringMatch,
)

_FLIP = {
    CompareOp.GT: CompareOp.LT,
    CompareOp.LT: CompareOp.GT,
    CompareOp.GE: CompareOp.LE,
    CompareOp.LE: CompareOp.GE,
}


def _is_name(expr: Expr) -> bool:
    return isinstance(expr, AttributeRef) and expr.field == "Name"


def attribute_names(expr: Expr) -> dict[str, int]:
    """Every string compared with ``att/Name`` in a predicate, with its offset."""
    if isinstance(expr, And | Or):
        return {**attribute_names(expr.left), **attribute_names(expr.right)}
    if isinstance(expr, Not):
        return attribute_names(expr.operand)
    if isinstance(expr, Compare):
        for a, b in ((expr.left, expr.right), (expr.right, expr.left)):
            if _is_name(a) and isinstance(b, Literal) and isinstance(b.value, str):
                return {b.value: b.offset}
    if isinstance(expr, In) and _is_name(expr.operand):
        return {str(v.value): v.offset for v in expr.values}
    return {}


def only_names(expr: Expr) -> bool:
    if isinstance(expr, And | Or):
        return only_names(expr.left) and only_names(expr.right)
    if isinstance(expr, Not):
        return only_names(expr.operand)
    if isinstance(expr, Compare):
        return _is_name(expr.left) or _is_name(expr.right)
    if isinstance(expr, In | StringMatch):
        return _is_name(expr.operand if isinstance(expr, In) else expr.subject)
    return False


def decide(expr: Expr, name: str | None) -> bool | None:
    """The predicate's truth for attribute ``name`` as far as Name conditions decide it.

    None as ``name`` stands for any attribute the predicate does not mention; None as the
    answer means "depends on the value".
    """
    if isinstance(expr, And):
        a, b = decide(expr.left, name), decide(expr.right, name)
        return False if False in (a, b) else (True if a is b is True else None)
    if isinstance(expr, Or):
        a, b = decide(expr.left, name), decide(expr.right, name)
        return True if True in (a, b) else (False if a is b is False else None)
    if isinstance(expr, Not):
        inner = decide(expr.operand, name)
        return None if inner is None else not inner
    if not only_names(expr):
        return None
    if name is None:
        if isinstance(expr, Compare):
            return {CompareOp.EQ: False, CompareOp.NE: True}.get(expr.op)
        return False if isinstance(expr, In) else None
    if isinstance(expr, In):
        return name in [v.value for v in expr.values]
    if isinstance(expr, StringMatch):
        pattern = str(expr.pattern.value)
        checks = {"contains": name.__contains__, "startswith": name.startswith, "endswith": name.endswith}
        return checks[expr.function](pattern)
    assert isinstance(expr, Compare)
    left, right, op = expr.left, expr.right, expr.op
    if _is_name(right):
        left, right, op = right, left, _FLIP.get(op, op)
    if not isinstance(right, Literal) or not isinstance(right.value, str):
        return None
    v = right.value
    results = {
        CompareOp.EQ: name == v,
        CompareOp.NE: name != v,
        CompareOp.GT: name > v,
        CompareOp.GE: name >= v,
        CompareOp.LT: name < v,
        CompareOp.LE: name <= v,
    }
    return results[op]


_LITERAL_KINDS = {
    LiteralType.STRING: "String",
    LiteralType.INTEGER: "Integer",
    LiteralType.DECIMAL: "Double",
    LiteralType.BOOLEAN: "Boolean",
    LiteralType.DATETIME: "DateTimeOffset",
}


def _is_value(expr: Expr) -> bool:
    return isinstance(expr, AttributeRef) and expr.field == "Value"


def value_hint(expr: Expr) -> str | None:
    """The type a predicate gives ``att/Value``: its cast, else the first literal it is compared with."""
    if isinstance(expr, And | Or):
        return value_hint(expr.left) or value_hint(expr.right)
    if isinstance(expr, Not):
        return value_hint(expr.operand)
    sides: list[Expr] = []
    if isinstance(expr, Compare):
        sides = [expr.left, expr.right]
    elif isinstance(expr, In):
        sides = [expr.operand, *expr.values]
    elif isinstance(expr, StringMatch):
        sides = [expr.subject]
    refs = [e for e in sides if _is_value(e)]
    for ref in refs:
        if isinstance(ref, AttributeRef) and ref.cast:
            return ref.cast
    if isinstance(expr, StringMatch) and refs:
        return "String"
    if refs:
        for side in sides:
            if isinstance(side, Literal) and side.type in _LITERAL_KINDS:
                return _LITERAL_KINDS[side.type]
    return None
