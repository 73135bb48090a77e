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
from proseo.rules.merge import ScopedRule, applicable_rules, merge, scoped_rules, source_key
from proseo.rules.parser import parse, parse_simple, source_offsets

__all__ = [
    "Alternative",
    "Delta",
    "Policy",
    "PolicyName",
    "Qualifier",
    "QualifierKind",
    "Rule",
    "ScopedRule",
    "SimpleRule",
    "Source",
    "applicable_rules",
    "merge",
    "parse",
    "parse_simple",
    "scoped_rules",
    "source_key",
    "source_offsets",
]
