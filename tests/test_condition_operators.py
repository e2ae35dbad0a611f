"""Condition-operator names are defined twice: the SCP schema's pattern and the evaluator's tables.

The names the evaluator implements are derived from its tables; the schema must accept exactly those,
each with the ForAnyValue:/ForAllValues: qualifiers and the IfExists suffix IAM allows (none on Null),
and refuse everything else, including near-misses.
"""

from __future__ import annotations

import itertools
import re

import jsonschema

from netguard.iam.conditions import KNOWN_OPERATORS, parse_operator
from netguard.resources import load_schema

QUALIFIERS = ("", "ForAnyValue:", "ForAllValues:")
SUFFIXES = ("", "IfExists")

# The operators IAM documents (reference_policies_elements_condition_operators): a check on the tables.
DOCUMENTED = {
    *(f"String{n}{op}" for n in ("", "Not") for op in ("Equals", "EqualsIgnoreCase", "Like")),
    *(f"Numeric{op}" for op in ("Equals", "NotEquals", "LessThan", "LessThanEquals", "GreaterThan")),
    "NumericGreaterThanEquals",
    *(f"Date{op}" for op in ("Equals", "NotEquals", "LessThan", "LessThanEquals", "GreaterThan")),
    "DateGreaterThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    *(f"Arn{n}{op}" for n in ("", "Not") for op in ("Equals", "Like")),
    "Null",
}

NEAR_MISSES = [
    "",
    "StringEquals\n",
    "Null\n",
    "ForAnyValue:StringLike\n",
    "StringEquals ",
    " StringEquals",
    "StringEquals\t",
    "stringEquals",
    "STRINGEQUALS",
    "StringEqualsIgnorecase",
    "StringEqualsIfexists",
    "StringEqual",
    "StringEqualss",
    "StringEqualsIfExistsIfExists",
    "IfExistsStringEquals",
    "StringIfExistsEquals",
    "IfExists",
    "ForAnyValue:",
    ":StringEquals",
    "ForAnyValue::StringEquals",
    "ForAnyValue StringEquals",
    "ForAnyValueStringEquals",
    "ForAnyValues:StringEquals",
    "ForAllValue:StringEquals",
    "forAnyValue:StringEquals",
    "ForAnyValue:ForAllValues:StringEquals",
    "StringEquals:ForAnyValue",
    "NullIfExists",
    "ForAnyValue:Null",
    "ForAllValues:Null",
    "ForAllValues:NullIfExists",
    "NotNull",
    "BinaryNotEquals",
    "NotBool",
    "BoolNot",
    "NotArnLike",
    "StringNotIpAddress",
    "IpAddressNot",
    "NotIpAddressNot",
    "DateLike",
    "StringLessThan",
    "NumericLike",
    "NumericNotLessThan",
    "ArnLikeIgnoreCase",
    "\uff33tringEquals",  # a fullwidth S
]


def _allowed() -> set[str]:
    """Every operator name, derived from the evaluator's tables and IAM's rules for the modifiers."""
    names = {"Null"} if "Null" in KNOWN_OPERATORS else set()
    for base in KNOWN_OPERATORS - {"Null"}:
        names.update(q + base + s for q in QUALIFIERS for s in SUFFIXES)
    return names


def _property_names_schema() -> dict:
    return load_schema("scp.schema.json")["$defs"]["statement"]["properties"]["Condition"]["propertyNames"]


def _schema_accepts(name: str) -> bool:
    document = {
        "Version": "2012-10-17",
        "Statement": {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {name: {"aws:SourceIp": "x"}}},
    }
    return jsonschema.Draft202012Validator(load_schema("scp.schema.json")).is_valid(document)


def test_the_evaluator_implements_the_documented_operators():
    assert KNOWN_OPERATORS == DOCUMENTED
    assert len(_allowed()) == 26 * 6 + 1  # Null takes neither qualifier nor IfExists


def test_the_schema_accepts_every_operator_name_the_evaluator_implements():
    refused = sorted(name for name in _allowed() if not _schema_accepts(name))
    assert refused == []
    assert all(parse_operator(name) is not None for name in _allowed())


def test_the_schema_and_the_evaluator_refuse_near_misses():
    assert [name for name in NEAR_MISSES if name in _allowed()] == []
    assert [name for name in NEAR_MISSES if _schema_accepts(name)] == []
    assert [name for name in NEAR_MISSES if parse_operator(name) is not None] == []


def test_the_schema_accepts_nothing_else_from_the_operators_vocabulary():
    """Every sequence of up to four name parts, qualified or not, with or without IfExists."""
    parts = ["String", "Numeric", "Date", "Bool", "Binary", "Ip", "Address", "Arn", "Null", "Not", "Equals"]
    parts += ["Like", "Less", "Greater", "Than", "IgnoreCase", "IfExists"]
    # jsonschema applies "pattern" with re.search: the same check, without a validator per name.
    pattern = re.compile(_property_names_schema()["pattern"])
    allowed = _allowed()
    disagree = []
    for length in range(1, 5):
        for base in map("".join, itertools.product(parts, repeat=length)):
            for name in (q + base + s for q in QUALIFIERS for s in SUFFIXES):
                expected = name in allowed
                if (pattern.search(name) is not None) != expected or (parse_operator(name) is not None) != expected:
                    disagree.append(name)
    assert disagree == []
