"""IAM condition operators in three-valued logic: True, False, or None for "cannot tell".

A key the request context does not hold is either known to be absent (the record shows the request
did not carry it) or unknown (the record cannot say, e.g. principal tags). Negated operators are
true for an absent key; an unknown key makes the operator None, never a guess.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from netguard.iam.actions import arn_matches, wildcard_regex

Truth = bool | None


@dataclass(frozen=True)
class RequestContext:
    """Condition keys of one request. Keys are compared case-insensitively, as IAM does."""

    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    absent: frozenset[str] = frozenset()  # keys known not to be in the request (lower case)
    absent_prefixes: tuple[str, ...] = ()  # e.g. "aws:requesttag/" when the request had no tags

    @classmethod
    def build(
        cls, values: Mapping[str, Any], absent: Iterable[str] = (), absent_prefixes: Iterable[str] = ()
    ) -> RequestContext:
        normal: dict[str, tuple[str, ...]] = {}
        for key, value in values.items():
            if value is None:
                continue
            items = value if isinstance(value, (list, tuple)) else [value]
            normal[key.lower()] = tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in items)
        return cls(normal, frozenset(k.lower() for k in absent), tuple(p.lower() for p in absent_prefixes))

    def lookup(self, key: str) -> tuple[str, ...] | None:
        """Values of key; () when known absent; None when unknown."""
        lowered = key.lower()
        if lowered in self.values:
            return self.values[lowered]
        if lowered in self.absent or any(lowered.startswith(p) for p in self.absent_prefixes):
            return ()
        return None


_VARIABLE = re.compile(r"\$\{([^}]+)\}")
_SPECIAL = {"*": "*", "?": "?", "$": "$"}


def substitute(text: str, context: RequestContext) -> tuple[str | None, str | None]:
    """Resolve policy variables (${aws:username}) in text. Returns (value, missing key)."""
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name, _, default = match.group(1).partition(", ")
        if name in _SPECIAL:
            return _SPECIAL[name]
        values = context.lookup(name.strip())
        if values:
            return values[0]
        if default:
            return default.strip().strip("'")
        missing.append(name.strip())
        return ""

    result = _VARIABLE.sub(replace, text)
    return (None, missing[0]) if missing else (result, None)


def _string_eq(a: str, b: str) -> bool:
    return a == b


def _string_eq_ci(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def _string_like(value: str, pattern: str) -> bool:
    return wildcard_regex(pattern, False).fullmatch(value) is not None


def _number(a: str) -> float:
    return float(a)


def _date(a: str) -> float:
    try:
        return float(a)
    except ValueError:
        return datetime.fromisoformat(a.replace("Z", "+00:00")).timestamp()


def _ip(value: str, pattern: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(pattern, strict=False)
    except ValueError:
        return False


def _compare(convert, op):
    def check(value: str, pattern: str) -> bool:
        try:
            return op(convert(value), convert(pattern))
        except (ValueError, TypeError):
            return False

    return check


_POSITIVE = {
    "StringEquals": _string_eq,
    "StringEqualsIgnoreCase": _string_eq_ci,
    "StringLike": _string_like,
    "NumericEquals": _compare(_number, lambda a, b: a == b),
    "NumericLessThan": _compare(_number, lambda a, b: a < b),
    "NumericLessThanEquals": _compare(_number, lambda a, b: a <= b),
    "NumericGreaterThan": _compare(_number, lambda a, b: a > b),
    "NumericGreaterThanEquals": _compare(_number, lambda a, b: a >= b),
    "DateEquals": _compare(_date, lambda a, b: a == b),
    "DateLessThan": _compare(_date, lambda a, b: a < b),
    "DateLessThanEquals": _compare(_date, lambda a, b: a <= b),
    "DateGreaterThan": _compare(_date, lambda a, b: a > b),
    "DateGreaterThanEquals": _compare(_date, lambda a, b: a >= b),
    "Bool": _string_eq_ci,
    "BinaryEquals": _string_eq,
    "IpAddress": _ip,
    "ArnEquals": lambda value, pattern: arn_matches(pattern, value),
    "ArnLike": lambda value, pattern: arn_matches(pattern, value),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "NotIpAddress": "IpAddress",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}
KNOWN_OPERATORS = frozenset(_POSITIVE) | frozenset(_NEGATED) | {"Null"}
_OPERATOR = re.compile(r"(?:(ForAnyValue|ForAllValues):)?([A-Za-z]+?)(IfExists)?")


def parse_operator(name: str) -> tuple[str | None, str, bool] | None:
    """(set qualifier, base operator, IfExists) for a condition operator name, or None if unknown."""
    match = _OPERATOR.fullmatch(name)  # fullmatch: `$` would also match before a final newline
    if not match or match.group(2) not in KNOWN_OPERATORS:
        return None
    if match.group(2) == "Null" and (match.group(1) or match.group(3)):
        return None
    return match.group(1), match.group(2), bool(match.group(3))


@dataclass
class ConditionResult:
    truth: Truth
    missing: list[str] = field(default_factory=list)


def _as_strings(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [str(v).lower() if isinstance(v, bool) else str(v) for v in items]


def _one_key(
    operator: str,
    qualifier: str | None,
    if_exists: bool,
    key: str,
    wanted: list[str],
    context: RequestContext,
    missing: list[str],
) -> Truth:
    values = context.lookup(key)
    if values is None:
        missing.append(key)
        return None
    if operator == "Null":
        expect_absent = wanted[0].lower() == "true" if wanted else True
        return (len(values) == 0) == expect_absent
    negated = operator in _NEGATED
    base = _NEGATED.get(operator, operator)
    test = _POSITIVE[base]
    patterns: list[str] = []
    for raw in wanted:
        resolved, unknown = substitute(raw, context)
        if unknown:
            missing.append(unknown)
            return None
        patterns.append(resolved)
    if not values:
        if qualifier == "ForAllValues":
            return True  # vacuously: every one of no values matches
        if qualifier == "ForAnyValue":
            return False  # no value to match, whatever the operator (IAM User Guide, multivalued keys)
        return negated or if_exists

    def matches(value: str) -> bool:
        return any(test(value, p) for p in patterns)

    if qualifier == "ForAllValues":
        hits = [matches(v) for v in values]
        return all(not h for h in hits) if negated else all(hits)
    if qualifier == "ForAnyValue":
        hits = [matches(v) for v in values]
        return any(not h for h in hits) if negated else any(hits)
    hit = any(matches(v) for v in values)
    return not hit if negated else hit


def evaluate_condition(block: Mapping[str, Any] | None, context: RequestContext) -> ConditionResult:
    """AND over operators and keys; an unknown operator or key gives None with the keys it lacked."""
    if not block:
        return ConditionResult(True)
    missing: list[str] = []
    results: list[Truth] = []
    for name, keys in block.items():
        parsed = parse_operator(name)
        if parsed is None or not isinstance(keys, Mapping):
            missing.append(f"operator {name}")
            results.append(None)
            continue
        qualifier, operator, if_exists = parsed
        for key, wanted in keys.items():
            results.append(_one_key(operator, qualifier, if_exists, key, _as_strings(wanted), context, missing))
    if any(r is False for r in results):
        return ConditionResult(False)
    if any(r is None for r in results):
        return ConditionResult(None, sorted(set(missing)))
    return ConditionResult(True)
