"""Selection rules: the language that decides each job step's inputs (no Airflow import)."""

from proseo.rules.ast import (
    Alternative,
    Delta,
    Policy,
    PolicyName,
    Qualifier,
    QualifierKind,
    Rule,
    SimpleRule,
    Source,
)
from proseo.rules.parser import parse, parse_simple

__all__ = [
    "Alternative",
    "Delta",
    "Policy",
    "PolicyName",
    "Qualifier",
    "QualifierKind",
    "Rule",
    "SimpleRule",
    "Source",
    "parse",
    "parse_simple",
]
