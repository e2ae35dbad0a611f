"""A second, deliberately naive IAM/SCP evaluator, written from AWS's documentation for the tests only.

It shares nothing with netguard.iam but the input (a RequestContext): no regular expressions for wildcards,
no tables shared with the implementation. Every rule cites the AWS page it comes from:

* "IAM JSON policy elements: Condition operators" (IAM User Guide)
* "Single-valued vs. multivalued context keys" (IAM User Guide, the ForAllValues/ForAnyValue rules)
* "IAM policy elements: Variables and tags" (IAM User Guide; "Policy variables with no value",
  "Special characters", "Specifying default values")
* "IAM JSON policy elements: Resource" and "Amazon Resource Names (ARNs)"
* "Policy evaluation logic" (IAM User Guide) and "SCP evaluation" (AWS Organizations User Guide)

Three-valued logic (Kleene): True, False, or UNKNOWN when the answer depends on something the request
context cannot say. A key is present (values), known absent (), or unknown (None). The answer is definite
only when every key it depends on is known:

* a condition entry (operator, key) whose key is unknown is UNKNOWN: presence alone decides IfExists,
  negated operators, Null and the set operators;
* a policy value whose variable reads an unknown key is UNKNOWN, but only that value: the values of one
  key are OR-ed, so another value that matches settles it;
* a Resource pattern against a resource the record does not name is UNKNOWN, except `*` (matches
  every resource) and a pattern with a variable that has no value (matches no resource);
* AND/OR/NOT over those follow Kleene's tables: False AND x is False, True OR x is True.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from netguard.iam.conditions import RequestContext

UNKNOWN = None
ALLOW, DENY, INDETERMINATE = "Allow", "Deny", "Indeterminate"


# --- Kleene logic -------------------------------------------------------------------------------------


def k_not(value: bool | None) -> bool | None:
    return None if value is None else not value


def k_and(values: Iterable[bool | None]) -> bool | None:
    seen_unknown = False
    for value in values:
        if value is False:
            return False
        if value is None:
            seen_unknown = True
    return None if seen_unknown else True


def k_or(values: Iterable[bool | None]) -> bool | None:
    seen_unknown = False
    for value in values:
        if value is True:
            return True
        if value is None:
            seen_unknown = True
    return None if seen_unknown else False


# --- The request context --------------------------------------------------------------------------------


def lookup(context: RequestContext, key: str) -> tuple[str, ...] | None:
    """Values of a key; () when the request is known not to carry it; None when nobody can say.
    Key names are case-insensitive ("IAM policy elements: Variables and tags")."""
    name = key.lower()
    if name in context.values:
        return tuple(context.values[name])
    if name in context.absent:
        return ()
    for prefix in context.absent_prefixes:
        if name.startswith(prefix):
            return ()
    return None


# --- Patterns: policy text after variable substitution ---------------------------------------------------

STAR = ("wildcard", "*")  # any run of characters, possibly empty
ONE = ("wildcard", "?")  # exactly one character
NO_VALUE = "no value"  # a variable whose key the request does not carry, and no default


class Unresolved:
    """A pattern with a variable whose key is unknown: its text cannot be known."""

    def __init__(self, key: str) -> None:
        self.key = key


def resolve(text: str, context: RequestContext, wildcards: bool) -> list[Any] | str | Unresolved:
    """The pattern a policy string stands for, as a list of tokens (one-character strings and STAR/ONE).

    "IAM policy elements: Variables and tags": `${key}` is replaced by the key's value in the request;
    `${key, 'default'}` uses the default when the key has no value; `${*}`, `${?}` and `${$}` stand for
    the characters themselves, never for wildcards ("Special characters"). A variable whose key has no
    value makes the value "effectively null" ("Policy variables with no value"): NO_VALUE. A variable
    whose key is unknown could have any value or none, so even a default cannot be relied on.
    Substituted text is literal: only wildcards written in the policy are wildcards.
    """
    tokens: list[Any] = []
    no_value = False
    unknown: str | None = None
    i = 0
    while i < len(text):
        if text.startswith("${", i) and "}" in text[i + 2 :]:
            end = text.index("}", i + 2)
            inner = text[i + 2 : end]
            i = end + 1
            if inner in ("*", "?", "$"):
                tokens.append(inner)
                continue
            name, default = inner, None
            if ", " in inner:
                name, rest = inner.split(", ", 1)
                if len(rest) >= 2 and rest[0] == "'" and rest[-1] == "'":
                    default = rest[1:-1]
            values = lookup(context, name.strip())
            if values is None:
                unknown = unknown or name.strip()
            elif values:
                tokens.extend(values[0])  # only single-valued keys can be variables
            elif default is not None:
                tokens.extend(default)
            else:
                no_value = True
            continue
        char = text[i]
        i += 1
        if wildcards and char == "*":
            tokens.append(STAR)
        elif wildcards and char == "?":
            tokens.append(ONE)
        else:
            tokens.append(char)
    if no_value:
        return NO_VALUE  # null whatever the other variables hold
    if unknown is not None:
        return Unresolved(unknown)
    return tokens


def plain(tokens: list[Any]) -> str:
    """The text of a pattern without wildcards."""
    return "".join(t if isinstance(t, str) else t[1] for t in tokens)


def glob(tokens: list[Any], text: str, ignore_case: bool = False) -> bool:
    """Whether a wildcard pattern covers all of text: dynamic programming over (tokens read, chars read)."""
    if ignore_case:
        text = text.lower()
        tokens = [t.lower() if isinstance(t, str) else t for t in tokens]
    # reach[j]: the tokens read so far can cover exactly text[:j]
    reach = [True] + [False] * len(text)
    for token in tokens:
        after = [False] * (len(text) + 1)
        if token == STAR:
            running = False
            for j in range(len(text) + 1):
                running = running or reach[j]
                after[j] = running
        else:
            for j in range(1, len(text) + 1):
                after[j] = reach[j - 1] and (token == ONE or token == text[j - 1])
        reach = after
    return reach[len(text)]


def split_tokens(tokens: list[Any], limit: int) -> list[list[Any]]:
    """Split a pattern at its colons, at most limit times."""
    parts: list[list[Any]] = [[]]
    for token in tokens:
        if token == ":" and len(parts) <= limit:
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


def arn_like(tokens: list[Any], arn: str) -> bool:
    """ArnEquals/ArnLike ("Condition operators", ARN operators): each of the six colon-delimited components
    is checked separately, case-sensitively, with * and ?; the sixth (resource) holds the rest, colons and
    all ("Amazon Resource Names": arn:partition:service:region:account-id:resource)."""
    wanted = split_tokens(tokens, 5)
    have = arn.split(":", 5)
    if len(wanted) != 6 or len(have) != 6:
        return False
    return all(glob(w, h) for w, h in zip(wanted, have, strict=True))


def resource_like(tokens: list[Any], arn: str) -> bool:
    """The Resource element ("IAM JSON policy elements: Resource"): wildcards within each ARN segment.

    A pattern of fewer than six segments whose last segment holds `*` (`*`, `arn:aws:ec2:*`) lets that
    last segment cover the rest of the ARN, colons included: what IAM does, as measured in issue 16 and
    pinned in tests/test_aws_semantics.py.
    """
    segments = split_tokens(tokens, 10**6)
    if len(segments) >= 6:
        return arn_like(tokens, arn)
    if STAR not in segments[-1]:
        return False
    have = arn.split(":", 5)
    if len(have) != 6:
        return False
    head = have[: len(segments) - 1]
    rest = ":".join(have[len(segments) - 1 :])
    return all(glob(w, h) for w, h in zip(segments[:-1], head, strict=True)) and glob(segments[-1], rest)


# --- Condition operators ---------------------------------------------------------------------------------


def _number(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _instant(text: str) -> Decimal | None:
    """Seconds since the epoch for a date value: epoch (UNIX) time, or one of the W3C profiles of ISO 8601
    ("Condition operators", date operators: YYYY-MM, YYYY-MM-DD, YYYY-MM-DDThh:mm[:ss[.s]]TZD).
    A date without a time is midnight UTC; TZD is Z or +hh:mm / -hh:mm."""
    digits = text.lstrip("-")
    if any(c.isdigit() for c in digits) and all(c.isdigit() or c == "." for c in digits) and digits.count(".") <= 1:
        return Decimal(text)
    date, _, clock = text.partition("T")
    pieces = date.split("-")
    if len(pieces) not in (2, 3) or not all(p.isdigit() for p in pieces):
        return None
    if len(pieces[0]) != 4 or any(len(p) != 2 for p in pieces[1:]):
        return None
    year, month = int(pieces[0]), int(pieces[1])
    day = int(pieces[2]) if len(pieces) == 3 else 1
    hour = minute = second = 0
    fraction = Decimal(0)
    offset = timedelta(0)
    if clock:
        if len(pieces) != 3:
            return None
        if clock.endswith("Z"):
            clock = clock[:-1]
        elif len(clock) > 6 and clock[-6] in "+-" and clock[-3] == ":":
            sign = 1 if clock[-6] == "+" else -1
            offset = sign * timedelta(hours=int(clock[-5:-3]), minutes=int(clock[-2:]))
            clock = clock[:-6]
        else:
            return None  # a time needs its zone in the W3C profiles
        whole, _, frac = clock.partition(".")
        fields = whole.split(":")
        if len(fields) not in (2, 3) or not all(f.isdigit() and len(f) == 2 for f in fields):
            return None
        if frac and (len(fields) != 3 or not frac.isdigit()):
            return None
        hour, minute = int(fields[0]), int(fields[1])
        second = int(fields[2]) if len(fields) == 3 else 0
        fraction = Decimal("0." + frac) if frac else Decimal(0)
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC) - offset
    except ValueError:
        return None
    elapsed = moment - _EPOCH
    return Decimal(elapsed.days * 86400 + elapsed.seconds) + fraction


def _in_cidr(address: str, block: str) -> bool:
    """IpAddress ("Condition operators", IP address operators): CIDR, a bare address meaning /32 (or /128)."""
    try:
        ip = ipaddress.ip_address(address)
        base, _, prefix = block.partition("/")
        net = ipaddress.ip_address(base)
    except ValueError:
        return False
    if ip.version != net.version:
        return False
    width = 32 if ip.version == 4 else 128
    if prefix and not prefix.isdigit():
        return False
    length = int(prefix) if prefix else width
    if length > width:
        return False
    keep = width - length
    return int(ip) >> keep == int(net) >> keep


def _binary(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _ordered(convert, compare):
    def test(value: str, wanted: str) -> bool:
        a, b = convert(value), convert(wanted)
        return a is not None and b is not None and compare(a, b)

    return test


def _equal(a, b) -> bool:
    return a == b


def _less(a, b) -> bool:
    return a < b


def _less_eq(a, b) -> bool:
    return a <= b


def _greater(a, b) -> bool:
    return a > b


def _greater_eq(a, b) -> bool:
    return a >= b


def _string_equals(value: str, tokens: list[Any]) -> bool:
    return value == plain(tokens)


def _string_equals_ic(value: str, tokens: list[Any]) -> bool:
    return value.lower() == plain(tokens).lower()


def _string_like(value: str, tokens: list[Any]) -> bool:
    return glob(tokens, value)


def _arn(value: str, tokens: list[Any]) -> bool:
    return arn_like(tokens, value)


def _on_text(test):
    def on_tokens(value: str, tokens: list[Any]) -> bool:
        return test(value, plain(tokens))

    return on_tokens


_NUMERIC = {
    "Equals": _equal,
    "LessThan": _less,
    "LessThanEquals": _less_eq,
    "GreaterThan": _greater,
    "GreaterThanEquals": _greater_eq,
}

# name -> (test(request value, policy pattern), how the policy value is read, negated). Policy variables
# only in the string and ARN operators ("IAM policy elements: Variables and tags", where you can use them):
# "string" reads variables, "wildcard" variables and * ?, "literal" takes the value as written.
OPERATORS: dict[str, tuple[Any, str, bool]] = {
    "StringEquals": (_string_equals, "string", False),
    "StringNotEquals": (_string_equals, "string", True),
    "StringEqualsIgnoreCase": (_string_equals_ic, "string", False),
    "StringNotEqualsIgnoreCase": (_string_equals_ic, "string", True),
    "StringLike": (_string_like, "wildcard", False),
    "StringNotLike": (_string_like, "wildcard", True),
    "ArnEquals": (_arn, "wildcard", False),
    "ArnLike": (_arn, "wildcard", False),
    "ArnNotEquals": (_arn, "wildcard", True),
    "ArnNotLike": (_arn, "wildcard", True),
    "NumericNotEquals": (_on_text(_ordered(_number, _equal)), "literal", True),
    "DateNotEquals": (_on_text(_ordered(_instant, _equal)), "literal", True),
    "Bool": (_on_text(lambda v, p: v.lower() == p.lower() and p.lower() in ("true", "false")), "literal", False),
    "BinaryEquals": (_on_text(_ordered(_binary, _equal)), "literal", False),
    "IpAddress": (_on_text(_in_cidr), "literal", False),
    "NotIpAddress": (_on_text(_in_cidr), "literal", True),
}
for _suffix, _compare in _NUMERIC.items():
    OPERATORS["Numeric" + _suffix] = (_on_text(_ordered(_number, _compare)), "literal", False)
    OPERATORS["Date" + _suffix] = (_on_text(_ordered(_instant, _compare)), "literal", False)


def split_operator(name: str) -> tuple[str | None, str, bool]:
    """(ForAnyValue/ForAllValues or None, operator, IfExists) of a condition operator name."""
    qualifier = None
    for q in ("ForAnyValue:", "ForAllValues:"):
        if name.startswith(q):
            qualifier, name = q[:-1], name[len(q) :]
    if_exists = name.endswith("IfExists")
    if if_exists:
        name = name[: -len("IfExists")]
    return qualifier, name, if_exists


def _policy_values(raw: Any) -> list[str]:
    """Condition values: a string, number or JSON boolean, or a list of them (booleans as true/false)."""
    items = raw if isinstance(raw, list) else [raw]
    return [("true" if v else "false") if isinstance(v, bool) else str(v) for v in items]


def condition_entry(name: str, key: str, raw: Any, context: RequestContext) -> bool | None:
    """One operator applied to one key."""
    qualifier, operator, if_exists = split_operator(name)
    present = lookup(context, key)
    if present is None:
        return UNKNOWN
    wanted = _policy_values(raw)
    if operator == "Null":
        # "Condition operators", Null: true means the key must be absent, false that it must be there;
        # several values are OR-ed like any other ("Conditions with multiple context keys or values").
        return any(w.lower() == ("true" if not present else "false") for w in wanted)
    test, reading, negated = OPERATORS[operator]
    patterns = []
    for w in wanted:
        if reading == "literal":
            patterns.append(list(w))
        else:
            patterns.append(resolve(w, context, wildcards=reading == "wildcard"))

    def matches(value: str) -> bool | None:
        # one value against the policy's values, OR-ed; a null value matches nothing
        # ("Policy variables with no value": no equal or like value)
        results = []
        for pattern in patterns:
            if pattern == NO_VALUE:
                results.append(False)
            elif isinstance(pattern, Unresolved):
                results.append(UNKNOWN)
            else:
                results.append(test(value, pattern))
        return k_or(results)

    if qualifier == "ForAllValues":
        # "Single-valued vs. multivalued context keys": true when every request value matches, and true
        # when the request has none. IfExists adds nothing: there is no value to test.
        return k_and(k_not(matches(v)) if negated else matches(v) for v in present)
    if qualifier == "ForAnyValue":
        # true when at least one request value matches; false when the key is absent.
        return k_or(k_not(matches(v)) if negated else matches(v) for v in present)
    if not present:
        # "Condition operators": an absent key matches nothing, so a negated operator is true;
        # "...IfExists": an absent key makes the condition true.
        return bool(negated or if_exists)
    hit = k_or(matches(v) for v in present)
    return k_not(hit) if negated else hit


def condition_block(block: Mapping[str, Any] | None, context: RequestContext) -> bool | None:
    """ "IAM JSON policy elements: Condition": every operator and every key in it must hold (AND)."""
    if not block:
        return True
    return k_and(condition_entry(name, key, raw, context) for name, keys in block.items() for key, raw in keys.items())


# --- Statements and SCPs ---------------------------------------------------------------------------------


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def action_matches(pattern: str, action: str) -> bool:
    """ "IAM JSON policy elements: Action": case-insensitive, with * and ?."""
    tokens = [STAR if c == "*" else ONE if c == "?" else c for c in pattern]
    return glob(tokens, action, ignore_case=True)


def resource_entry(pattern: str, resource: str | None, context: RequestContext) -> bool | None:
    """One Resource pattern against the request's resource (None: the record does not say which)."""
    if pattern == "*":
        return True
    tokens = resolve(pattern, context, wildcards=True)
    if tokens == NO_VALUE:
        return False  # "Policy variables with no value": matches no resource
    if isinstance(tokens, Unresolved) or resource is None:
        return UNKNOWN
    return resource_like(tokens, resource)


def statement_applies(
    statement: Mapping[str, Any], action: str, resource: str | None, context: RequestContext
) -> bool | None:
    """Whether a statement covers the request: its action, its resource and its condition (AND)."""
    if "NotAction" in statement:
        action_hit = not any(action_matches(str(p), action) for p in _listed(statement["NotAction"]))
    else:
        action_hit = any(action_matches(str(p), action) for p in _listed(statement.get("Action")))
    if not action_hit:
        return False
    if "NotResource" in statement:
        listed = k_or(resource_entry(str(p), resource, context) for p in _listed(statement["NotResource"]))
        resource_hit = k_not(listed)
    else:
        resource_hit = k_or(resource_entry(str(p), resource, context) for p in _listed(statement.get("Resource")))
    return k_and([resource_hit, condition_block(statement.get("Condition"), context)])


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in _listed(document.get("Statement")) if isinstance(s, Mapping)]


def decide(levels: list[list[Mapping[str, Any]]], action: str, resource: str | None, context: RequestContext) -> str:
    """The SCP decision ("Policy evaluation logic"; AWS Organizations "SCP evaluation"): an explicit Deny in
    any SCP at any level denies; otherwise every level, root to account, needs an SCP whose statement
    allows the request, or the request is implicitly denied."""

    def covered(effect: str, documents: Iterable[Mapping[str, Any]]) -> bool | None:
        return k_or(
            statement_applies(s, action, resource, context)
            for document in documents
            for s in _statements(document)
            if s.get("Effect") == effect
        )

    denied = covered("Deny", [d for level in levels for d in level])
    allowed = k_and([k_not(denied), *(covered("Allow", level) for level in levels)])
    return {True: ALLOW, False: DENY, None: INDETERMINATE}[allowed]


def decide_each(
    levels: list[list[Mapping[str, Any]]], action: str, resources: list[str], context: RequestContext
) -> str:
    """A request on several resources is authorized once per (action, resource) pair (IAM Toolbox API
    reference, "Evaluation": one evaluation for a single action and resource pair; the Service
    Authorization Reference lists every resource type an action is authorized on): it is allowed only
    when it is allowed for every one of them."""
    truth = {ALLOW: True, DENY: False, INDETERMINATE: None}
    allowed = k_and([truth[decide(levels, action, resource, context)] for resource in resources])
    return {True: ALLOW, False: DENY, None: INDETERMINATE}[allowed]
