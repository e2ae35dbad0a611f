"""IAM condition operators in three-valued logic: True, False, or None for "cannot tell".

A key the request context does not hold is either known to be absent (the record shows the request
did not carry it) or unknown (the record cannot say, e.g. principal tags). Negated operators are
true for an absent key; an unknown key makes the operator None, never a guess. So do policy variables:
one whose key is absent has no value and matches nothing (a negated operator then holds), one whose key
is unknown leaves open only the policy value it is in. AND and OR follow three-valued logic: one False
in an AND, or one True in an OR, settles it whatever is unknown.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from netguard.iam.actions import arn_matches, literal, unmark, wildcard_regex

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
            lowered = key.lower()
            if value.__class__ is str:  # the common case, without the generic conversion below
                normal[lowered] = (value,)
                continue
            items = value if isinstance(value, (list, tuple)) else [value]
            normal[lowered] = tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in items)
        return cls(
            normal,
            frozenset(k.lower() for k in absent),
            tuple(p.lower() for p in absent_prefixes),
        )

    def lookup(self, key: str) -> tuple[str, ...] | None:
        """Values of key; () when known absent; None when unknown."""
        lowered = key.lower()
        found = self.values.get(lowered)  # lookup_lowered, inlined: the memo key calls this per record
        if found is not None:
            return found
        if lowered in self.absent or any(lowered.startswith(p) for p in self.absent_prefixes):
            return ()
        return None

    def lookup_lowered(self, lowered: str) -> tuple[str, ...] | None:
        """lookup for a key already in lower case: compiled conditions lower their keys once."""
        found = self.values.get(lowered)
        if found is not None:
            return found
        if lowered in self.absent or any(lowered.startswith(p) for p in self.absent_prefixes):
            return ()
        return None


_VARIABLE = re.compile(r"\$\{([^}]+)\}")
_SPECIAL = {"*": literal("*"), "?": literal("?"), "$": "$"}


@dataclass(frozen=True)
class Substituted:
    """A policy string with its variables resolved (IAM User Guide, "IAM policy elements: Variables and tags").

    text is the pattern, the characters that variables supplied marked literal (actions.literal); it is
    None when a variable has no value, or when one reads a key the request context cannot supply, which
    unknown names.
    """

    text: str | None
    unknown: str | None = None

    @property
    def no_value(self) -> bool:
        """A variable reads a key the request does not carry and gives no default: the value is
        "effectively null" (Policy variables with no value): it equals, is like, no value or resource."""
        return self.text is None and self.unknown is None


def substitute(text: str, context: RequestContext) -> Substituted:
    """Resolve the policy variables (${aws:username}, ${aws:PrincipalTag/team, 'default'}) in text.

    A key known to be absent takes the default when there is one, and otherwise has no value; an unknown
    key could have a value that would replace the default, so it leaves the text unknown. A variable with
    no value makes the whole string null, whatever the other variables hold.
    """
    no_value = False
    unknown: list[str] = []

    def replace(match: re.Match[str]) -> str:
        nonlocal no_value
        name, _, default = match.group(1).partition(", ")
        if name in _SPECIAL:
            return _SPECIAL[name]
        values = context.lookup(name.strip())
        if values is None:
            unknown.append(name.strip())
            return ""
        if values:
            return literal(values[0])
        if default:
            return literal(default.strip().strip("'"))
        no_value = True
        return ""

    result = _VARIABLE.sub(replace, text)
    if no_value:
        return Substituted(None)
    if unknown:
        return Substituted(None, unknown[0])
    return Substituted(result)


def any_of(truths: Iterable[Truth]) -> Truth:
    """OR in three-valued logic: True if one is True, else None if one is unknown, else False."""
    result: Truth = False
    for truth in truths:
        if truth:
            return True
        if truth is None:
            result = None
    return result


def all_of(truths: Iterable[Truth]) -> Truth:
    """AND in three-valued logic: False if one is False, else None if one is unknown, else True."""
    result: Truth = True
    for truth in truths:
        if truth is False:
            return False
        if truth is None:
            result = None
    return result


def _negate(truth: Truth) -> Truth:
    return None if truth is None else not truth


def _string_eq(a: str, b: str) -> bool:
    return a == unmark(b)


def _string_eq_ci(a: str, b: str) -> bool:
    return a.lower() == unmark(b).lower()


def _string_like(value: str, pattern: str) -> bool:
    return wildcard_regex(pattern, False).fullmatch(value) is not None


def _number(a: str) -> float:
    return float(a)


_YEAR_MONTH = re.compile(r"\d{4}-\d{2}")


def _date(a: str) -> float:
    """Epoch (UNIX) time, or a W3C profile of ISO 8601 (IAM User Guide, "Condition operators", date
    operators), YYYY-MM among them; a date or time without a zone is UTC, never the local zone."""
    try:
        return float(a)
    except ValueError:
        pass
    if _YEAR_MONTH.fullmatch(a):
        a += "-01"
    moment = datetime.fromisoformat(a.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


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


def _remembered(test: Callable[[str, str], bool]) -> Callable[[str, str], bool]:
    """test, its answers remembered per (value, pattern): the tests below are pure, and a trail asks the
    same few (principal ARN, ArnLike pattern) questions millions of times. The memo is bounded."""
    memo: dict[tuple[str, str], bool] = {}

    def remembered(value: str, pattern: str) -> bool:
        key = (value, pattern)
        found = memo.get(key)
        if found is None:
            found = test(value, pattern)
            if len(memo) >= 50_000:
                memo.clear()
            memo[key] = found
        return found

    return remembered


# The costly tests (wildcards, ARN segments, addresses, dates, numbers); string equality is cheaper
# than a memo lookup.
_POSITIVE.update(
    {
        name: _remembered(test)
        for name, test in _POSITIVE.items()
        if not name.startswith(("String", "Bool", "Binary")) or name == "StringLike"
    }
)
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


@dataclass(frozen=True)
class ConditionResult:
    """A condition block's answer, and the keys it lacked when it cannot tell. Read-only: the definite
    answers are two shared instances (made once, not per statement per request)."""

    truth: Truth
    missing: list[str] = field(default_factory=list)


_HOLDS, _FAILS = ConditionResult(True), ConditionResult(False)


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
    lowered: str,
) -> Truth:
    """One key of one operator whose policy values hold a policy variable, resolved against this
    request (_key_test compiles the other tests once); lowered is the key in lower case."""
    values = context.lookup_lowered(lowered)
    if values is None:
        missing.append(key)
        return None
    if operator == "Null":
        # true: the key must be absent; false: it must be there. Several values OR together.
        return any(w.lower() == ("false" if values else "true") for w in wanted)
    negated = operator in _NEGATED
    if not values:  # what the policy's values say cannot matter: there is nothing to compare them with
        if qualifier == "ForAllValues":
            return True  # vacuously: every one of no values matches
        if qualifier == "ForAnyValue":
            return False  # no value to match, whatever the operator (IAM User Guide, multivalued keys)
        return negated or if_exists
    test = _POSITIVE[_NEGATED.get(operator, operator)]
    patterns = [substitute(raw, context) for raw in wanted]
    unknown = sorted({p.unknown for p in patterns if p.unknown})

    def matches(value: str) -> Truth:
        # the policy's values OR together; an unknown one leaves the answer open only if no other matches,
        # and one with no value matches nothing (IAM User Guide, "Policy variables with no value")
        return any_of(None if p.unknown else p.text is not None and test(value, p.text) for p in patterns)

    if qualifier == "ForAllValues":
        result = all_of(_negate(matches(v)) if negated else matches(v) for v in values)
    elif qualifier == "ForAnyValue":
        result = any_of(_negate(matches(v)) if negated else matches(v) for v in values)
    else:
        hit = any_of(matches(v) for v in values)
        result = _negate(hit) if negated else hit
    if result is None:
        missing.extend(unknown)
    return result


def evaluate_condition(block: Mapping[str, Any] | None, context: RequestContext) -> ConditionResult:
    """AND over operators and keys; an unknown operator or key gives None with the keys it lacked."""
    return compile_condition(block)(context)


def compile_condition(block: Mapping[str, Any] | None) -> Callable[[RequestContext], ConditionResult]:
    """evaluate_condition with the block read once: operators parsed, values turned into strings and,
    where they hold no policy variable, resolved. The evaluator compiles each statement's Condition
    when it first sees the policy, so a record costs only the lookups and the comparisons."""
    if not block:
        return lambda context: _HOLDS
    bad: list[str] = []  # operators that are not IAM's, or not followed by an object: None whatever the request
    checks: list[_KeyTest] = []
    for name, keys in block.items():
        parsed = parse_operator(name)
        if parsed is None or not isinstance(keys, Mapping):
            bad.append(f"operator {name}")
            continue
        qualifier, operator, if_exists = parsed
        for key, wanted in keys.items():
            checks.append(_key_test(operator, qualifier, if_exists, key, _as_strings(wanted)))

    def evaluate(context: RequestContext) -> ConditionResult:
        missing = list(bad)
        truth: Truth = None if bad else True
        for check in checks:
            result = check(context, missing)
            if result is False:
                return _FAILS
            if result is None:
                truth = None
        if truth is None:
            return ConditionResult(None, sorted(set(missing)))
        return _HOLDS

    return evaluate


_KeyTest = Callable[[RequestContext, list[str]], Truth]


def _key_test(operator: str, qualifier: str | None, if_exists: bool, key: str, strings: list[str]) -> _KeyTest:
    """_one_key for one key of one operator, with what does not depend on the request settled once: a
    test whose policy values hold no variable compares against them as written (what substitute
    gives for any context), the operator's comparison, negation and answer for a key with no values
    chosen here. The answers are _one_key's (tests/test_reference_model.py checks the evaluator
    against a naive reading)."""
    lowered = key.lower()
    if any("${" in raw for raw in strings):  # a policy variable: resolved per request

        def with_variables(context: RequestContext, missing: list[str]) -> Truth:
            return _one_key(operator, qualifier, if_exists, key, strings, context, missing, lowered)

        return with_variables
    if operator == "Null":  # true: the key must be absent; false: it must be there; values OR together
        when_absent = any(w.lower() == "true" for w in strings)
        when_present = any(w.lower() == "false" for w in strings)

        def null(context: RequestContext, missing: list[str]) -> Truth:
            values = context.lookup_lowered(lowered)
            if values is None:
                missing.append(key)
                return None
            return when_present if values else when_absent

        return null
    negated = operator in _NEGATED
    test = _POSITIVE[_NEGATED.get(operator, operator)]
    texts = tuple(strings)
    if qualifier in ("ForAllValues", "ForAnyValue"):
        # every value must match, or one must: all() holds vacuously for no values, any() does not
        combine = all if qualifier == "ForAllValues" else any

        def each_value(context: RequestContext, missing: list[str]) -> Truth:
            values = context.lookup_lowered(lowered)
            if values is None:
                missing.append(key)
                return None
            return combine(any(test(v, t) for t in texts) != negated for v in values)

        return each_value
    no_values = negated or if_exists  # nothing to compare the policy's values with

    def single(context: RequestContext, missing: list[str]) -> Truth:
        values = context.lookup_lowered(lowered)
        if values is None:
            missing.append(key)
            return None
        if not values:
            return no_values
        for value in values:
            for text in texts:
                if test(value, text):
                    return not negated
        return negated

    return single
