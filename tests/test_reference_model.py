"""netguard's evaluator against a naive reference written from AWS's documentation (issue 16).

tests/reference_iam.py evaluates the same policies and requests from the documented rules alone; these
property tests generate policies that use every condition operator, the set operators, IfExists, NotAction,
NotResource, wildcard and short Resource patterns and policy variables, over SCP hierarchies of one to four
levels, and requests from small alphabets (so that patterns match) whose keys are present, known to be
absent or unknown. Both evaluators must give the same three-valued answer. The regression tests below
pin each disagreement the comparison found, naming the AWS page that settles it.
"""

from __future__ import annotations

import base64
import os
import time
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netguard.iam.conditions import RequestContext, evaluate_condition
from netguard.iam.evaluator import FULL_AWS_ACCESS, Policy, Request, evaluate_scps, statement_applies
from tests import reference_iam as ref

SETTINGS = {
    "derandomize": True,
    "database": None,
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}

# --- Small alphabets: values that patterns can match --------------------------------------------------------

ACCOUNTS = ["111111111111", "222222222222"]
NAMES = ["ann", "bob", "Ann"]
TEAMS = ["red", "blue", "Red"]
REGIONS = ["eu-west-1", "us-east-1"]
PREFIXES = ["home/ann/", "ann", "a*", "a?", "$a", "a$", "red"]  # s3:prefix: any characters, wildcards too
IPS = ["10.1.2.3", "10.200.0.1", "203.0.113.7", "2001:db8::1", "2001:db9::1"]
BLOBS = [base64.b64encode(b).decode() for b in (b"a", b"b", b"ab")]
TIMES = ["2020-01-01T00:00:00Z", "2020-06-15T12:30:00Z", "2019-12-31T23:00:00Z"]
EPOCHS = ["1577836800", "1592224200", "1577833200"]  # the same instants as TIMES
RESOURCES = [
    "arn:aws:ec2:eu-west-1:111111111111:vpc/vpc-1",
    "arn:aws:ec2:us-east-1:222222222222:vpc/ann",
    "arn:aws:s3:::bucket/ann/x",
    "arn:aws:s3:::bucket/red",
    "arn:aws:iam::111111111111:role/a:b",
    "arn:aws:iam::111111111111:user/bob",
]
ACTIONS = ["ec2:DeleteVpc", "ec2:CreateVpc", "s3:GetObject", "iam:PassRole"]

# --- Requests: what each kind of caller typically carries ("IAM policy elements: Variables and tags",
# principal key values; "AWS global condition context keys") ------------------------------------------------


@st.composite
def contexts(draw) -> RequestContext:
    kind = draw(st.sampled_from(["IAMUser", "AssumedRole"] * 2 + ["FederatedUser", "Root", "AWSAccount", "AWSService"]))
    account = draw(st.sampled_from(ACCOUNTS))
    name = draw(st.sampled_from(NAMES))
    values: dict[str, Any] = {}
    absent: list[str] = []
    if kind == "IAMUser":
        values |= {
            "aws:username": name,
            "aws:userid": "AIDA" + name.upper(),
            "aws:PrincipalType": "User",
            "aws:PrincipalArn": f"arn:aws:iam::{account}:user/{name}",
        }
    elif kind == "AssumedRole":
        values |= {
            "aws:userid": f"AROA1:{name}",
            "aws:PrincipalType": "AssumedRole",
            "aws:PrincipalArn": f"arn:aws:iam::{account}:role/{draw(st.sampled_from(['a:b', 'admin']))}",
            "aws:TokenIssueTime": draw(st.sampled_from(TIMES)),
        }
        absent.append("aws:username")
    elif kind == "FederatedUser":
        values |= {
            "aws:userid": f"{account}:{name}",
            "aws:PrincipalType": "FederatedUser",
            "aws:PrincipalArn": f"arn:aws:sts::{account}:federated-user/{name}",
            "aws:TokenIssueTime": draw(st.sampled_from(TIMES)),
        }
        absent.append("aws:username")
    elif kind == "Root":
        values |= {
            "aws:userid": account,
            "aws:PrincipalType": "Account",
            "aws:PrincipalArn": f"arn:aws:iam::{account}:root",
        }
        absent += ["aws:username", "aws:TokenIssueTime"]
    elif kind == "AWSAccount":  # a caller from another account: CloudTrail names the account only
        absent.append("aws:username")
    else:  # AWSService
        values |= {"aws:PrincipalServiceName": "ec2.amazonaws.com", "aws:PrincipalIsAWSService": "true"}
        absent += ["aws:username", "aws:PrincipalArn", "aws:userid", "aws:PrincipalType", "aws:PrincipalTag/team"]
    if kind != "AWSService":
        values["aws:PrincipalAccount"] = account
        values["aws:PrincipalIsAWSService"] = "false"
        absent.append("aws:PrincipalServiceName")
    if kind == "IAMUser":
        absent.append("aws:TokenIssueTime")
    # keys whose presence varies with the call: a value, known absent, or unknown (left out of both)
    optional = {
        "aws:PrincipalTag/team": st.sampled_from(TEAMS),
        "aws:SourceIp": st.sampled_from(IPS),
        "aws:VpcSourceIp": st.sampled_from(IPS[:2]),
        "aws:RequestedRegion": st.sampled_from(REGIONS),
        "aws:MultiFactorAuthPresent": st.sampled_from(["true", "false"]),
        "aws:SecureTransport": st.sampled_from(["true", "false"]),
        "aws:CurrentTime": st.sampled_from(TIMES),
        "aws:EpochTime": st.sampled_from(EPOCHS),
        "aws:SourceArn": st.sampled_from(RESOURCES),
        "s3:prefix": st.sampled_from(PREFIXES),
        "s3:max-keys": st.sampled_from(["5", "10", "10.0", "7.5"]),
        "example:Blob": st.sampled_from(BLOBS),
        "aws:TagKeys": st.lists(st.sampled_from(["team", "env", "Team"]), max_size=2, unique=True),
        "aws:CalledVia": st.lists(
            st.sampled_from(["athena.amazonaws.com", "cloudformation.amazonaws.com"]), max_size=2
        ),
    }
    for key, strategy in optional.items():
        state = draw(st.sampled_from(["value", "value", "absent", "unknown"]))
        if state == "value":
            values[key] = draw(strategy)
        elif state == "absent":
            absent.append(key)
    absent_prefixes = []
    tags = draw(st.sampled_from(["none", "some", "unknown"]))
    if tags == "none":
        absent_prefixes.append("aws:RequestTag/")
    elif tags == "some":
        values["aws:RequestTag/team"] = draw(st.sampled_from(TEAMS))
        absent_prefixes.append("aws:RequestTag/")  # the request's other tags are known not to be there
    # and any known key may still be lost: a record that cannot say
    for key in draw(st.lists(st.sampled_from(sorted(values)), max_size=2)):
        values.pop(key, None)
    absent = [k for k in absent if k not in values]
    return RequestContext.build(values, absent=absent, absent_prefixes=absent_prefixes)


# --- Policies -----------------------------------------------------------------------------------------------

VARIABLES = [
    "${aws:username}",
    "${AWS:UserName}",
    "${aws:PrincipalTag/team}",
    "${aws:username, 'ann'}",
    "${aws:PrincipalTag/team, 'red'}",
    "${aws:userid}",
    "${aws:PrincipalAccount}",
    "${s3:prefix}",
    "${aws:RequestTag/team}",
]
SPECIALS = ["${*}", "${?}", "${$}"]

string_values = st.one_of(
    st.sampled_from(NAMES + TEAMS + PREFIXES + ["User", "AssumedRole", "Account", "ec2.amazonaws.com"]),
    st.sampled_from([*REGIONS, "eu-*", "*", "?nn", "a*", "*a*", "h*/", "home/*"]),
    st.sampled_from(VARIABLES),
    st.builds(
        "".join, st.lists(st.sampled_from(["a", "home/", "/", "*", "?", "$", *VARIABLES, *SPECIALS]), max_size=3)
    ),
)
STRING_KEYS = [
    "aws:username",
    "aws:userid",
    "aws:PrincipalType",
    "aws:PrincipalTag/team",
    "aws:PrincipalTag/Team",
    "aws:RequestTag/team",
    "aws:RequestedRegion",
    "s3:prefix",
    "aws:PrincipalServiceName",
    "AWS:USERNAME",
]
MULTI_KEYS = ["aws:TagKeys", "aws:CalledVia"]
ARN_KEYS = ["aws:PrincipalArn", "aws:SourceArn"]

PRINCIPAL_ARNS = [
    "arn:aws:iam::111111111111:user/ann",
    "arn:aws:iam::222222222222:user/bob",
    "arn:aws:sts::111111111111:federated-user/bob",
    "arn:aws:iam::222222222222:root",
    "arn:aws:iam::111111111111:role/admin",
]
OTHER_SEGMENTS = [["arn"], ["aws", "aws-cn"], ["ec2", "s3", "iam", "sts"], ["", *REGIONS], ["", *ACCOUNTS]]
# names in a resource part, and the variables that could stand for them
NAME_VARIABLES = {
    "ann": ["${aws:username}", "${aws:username, 'ann'}", "${AWS:UserName}", "${aws:PrincipalTag/team, 'ann'}"],
    "bob": ["${aws:username}", "${aws:username, 'bob'}"],
    "red": ["${aws:PrincipalTag/team}", "${aws:PrincipalTag/team, 'red'}", "${aws:RequestTag/team}", "${s3:prefix}"],
    "admin": ["${aws:username, 'admin'}", "${aws:userid}"],
    "vpc-1": ["${aws:username, 'vpc-1'}"],
}


@st.composite
def _segment(draw, segment: str, index: int) -> str:
    """One ARN segment as a policy might write it: as is, wildcarded, or another value."""
    how = draw(st.sampled_from(["keep", "keep", "keep", "keep", "star", "prefix", "one", "other"]))
    if how == "star":
        return "*"
    if how == "prefix":
        return segment[: draw(st.integers(0, len(segment)))] + "*"
    if how == "one" and segment:
        at = draw(st.integers(0, len(segment) - 1))
        return segment[:at] + "?" + segment[at + 1 :]
    if how == "other" and index < 5:
        return draw(st.sampled_from(OTHER_SEGMENTS[index]))
    if how == "other":
        return draw(st.sampled_from(["vpc/*", "role/a:*", "bucket/*", "user/*", "root", "a:b", "vpc/ann"]))
    if index == 5:  # the resource part, the only place for variables (Variables and tags, Resource element)
        for name, variables in NAME_VARIABLES.items():
            if name in segment and draw(st.booleans()):
                segment = segment.replace(name, draw(st.sampled_from(variables)))
        if draw(st.integers(0, 5)) == 0:
            segment = segment.replace(":", "${?}").replace("/x", "/${*}").replace("d", "${$}")
    return segment


@st.composite
def arn_patterns(draw, bases: list[str], short: bool) -> str:
    """A pattern made from an ARN the requests use, so that it can match; short ones have fewer than six
    segments and most often end in a wildcard."""
    segments = draw(st.sampled_from(bases)).split(":", 5)
    pattern = [draw(_segment(segment, i)) for i, segment in enumerate(segments)]
    if short:
        pattern = pattern[: draw(st.integers(1, 5))]
        if draw(st.integers(0, 3)):
            pattern[-1] = pattern[-1].rstrip("*") + "*"
    return ":".join(pattern)


resource_patterns = st.one_of(
    st.just("*"),
    arn_patterns(RESOURCES, short=False),
    arn_patterns(RESOURCES, short=False),
    arn_patterns(RESOURCES, short=True),
)
# A lone `*` is left out of the ARN operators' values: "Condition operators" describes six components
# checked one by one and says nothing of it (netguard takes it for any ARN, as in the Resource element).
arn_condition_values = st.one_of(
    arn_patterns(PRINCIPAL_ARNS + RESOURCES, short=False), arn_patterns(PRINCIPAL_ARNS + RESOURCES, short=True)
).filter(lambda p: p != "*")

DATE_VALUES = [
    *TIMES,
    *EPOCHS,
    "2020-01-01",
    "2020-01",
    "2020-06",
    "2020-06-15T14:30+02:00",
    "2020-06-15T12:30:00.5Z",
    "2019-12-31T23:00Z",
    "1592224200.5",
]


def _operator(base: str, qualifiers: bool = True) -> st.SearchStrategy[str]:
    qualifier = st.sampled_from(["", "", "ForAnyValue:", "ForAllValues:"]) if qualifiers else st.just("")
    return st.builds(lambda q, s: q + base + s, qualifier, st.sampled_from(["", "", "IfExists"]))


def _one_or_list(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return values | st.lists(values, min_size=1, max_size=3)


def _entry(operators, keys, values) -> st.SearchStrategy[tuple[str, str, Any]]:
    return st.tuples(operators, st.sampled_from(keys), _one_or_list(values))


STRING_OPERATORS = [
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
]
NUMERIC_OPERATORS = [f"Numeric{s}" for s in ["Equals", "NotEquals", "LessThan", "LessThanEquals", "GreaterThan"]]
NUMERIC_OPERATORS.append("NumericGreaterThanEquals")
DATE_OPERATORS = [o.replace("Numeric", "Date") for o in NUMERIC_OPERATORS]
ARN_OPERATORS = ["ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"]

ALL_KEYS = STRING_KEYS + MULTI_KEYS + ARN_KEYS + ["aws:SourceIp", "s3:max-keys", "aws:CurrentTime", "example:Blob"]
ALL_KEYS += ["aws:TokenIssueTime", "aws:MultiFactorAuthPresent"]

condition_entries = st.one_of(
    # unqualified string operators on single-valued keys; set operators on either kind
    _entry(st.sampled_from(STRING_OPERATORS).flatmap(lambda b: _operator(b, False)), STRING_KEYS, string_values),
    _entry(
        st.sampled_from(STRING_OPERATORS).flatmap(lambda b: _operator(b)).filter(lambda o: o.startswith("For")),
        MULTI_KEYS + STRING_KEYS,
        st.sampled_from(["team", "Team", "env", "t*", "athena.amazonaws.com", "*.amazonaws.com", "red"])
        | string_values,
    ),
    _entry(
        st.sampled_from(NUMERIC_OPERATORS).flatmap(_operator),
        ["s3:max-keys"],
        st.sampled_from(["5", "7.5", "10", 10, "8"]),
    ),
    _entry(
        st.sampled_from(DATE_OPERATORS).flatmap(_operator),
        ["aws:CurrentTime", "aws:EpochTime", "aws:TokenIssueTime"],
        st.sampled_from(DATE_VALUES),
    ),
    _entry(
        st.just("Bool").flatmap(_operator),
        ["aws:MultiFactorAuthPresent", "aws:SecureTransport", "aws:PrincipalIsAWSService"],
        st.sampled_from(["true", "false", True, False]),
    ),
    _entry(st.just("BinaryEquals").flatmap(_operator), ["example:Blob"], st.sampled_from(BLOBS)),
    _entry(
        st.sampled_from(["IpAddress", "NotIpAddress"]).flatmap(_operator),
        ["aws:SourceIp", "aws:VpcSourceIp"],
        st.sampled_from(["10.0.0.0/8", "10.1.2.3", "10.1.2.3/32", "203.0.113.0/24", "2001:db8::/32", "0.0.0.0/0"]),
    ),
    _entry(st.sampled_from(ARN_OPERATORS).flatmap(_operator), ARN_KEYS, arn_condition_values),
    _entry(st.just("Null"), ALL_KEYS, st.sampled_from(["true", "false", True, False])),
)


@st.composite
def conditions(draw) -> dict[str, dict[str, Any]]:
    block: dict[str, dict[str, Any]] = {}
    for operator, key, value in draw(st.lists(condition_entries, min_size=1, max_size=3)):
        block.setdefault(operator, {})[key] = value
    return block


action_patterns = st.sampled_from(
    ["*", "ec2:*", "ec2:Delete*", "EC2:deletevpc", "ec2:Create?pc", "s3:*Object", "iam:*"]
)


@st.composite
def statements(draw) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Deny"]))}
    key = draw(st.sampled_from(["Action", "Action", "NotAction"]))
    statement[key] = draw(_one_or_list(action_patterns))
    key = draw(st.sampled_from(["Resource", "Resource", "NotResource"]))
    statement[key] = draw(_one_or_list(resource_patterns))
    if draw(st.booleans()):
        statement["Condition"] = draw(conditions())
    return statement


@st.composite
def documents(draw) -> dict[str, Any]:
    if draw(st.integers(0, 3)) == 0:
        return FULL_AWS_ACCESS
    body = draw(st.lists(statements(), min_size=1, max_size=3))
    return {"Version": "2012-10-17", "Statement": body[0] if len(body) == 1 and draw(st.booleans()) else body}


hierarchies = st.lists(st.lists(documents(), min_size=1, max_size=3), min_size=1, max_size=4)
resources = st.sampled_from([None, None, *RESOURCES])

# --- The comparisons ----------------------------------------------------------------------------------------


def _truth(value: bool | None) -> str:
    return {True: "true", False: "false", None: "unknown"}[value]


@settings(max_examples=2500, **SETTINGS)
@given(conditions(), contexts())
def test_conditions_agree_with_the_reference(block, context):
    expected = ref.condition_block(block, context)
    assert _truth(evaluate_condition(block, context).truth) == _truth(expected), (block, context)


@settings(max_examples=1200, **SETTINGS)
@given(statements(), st.sampled_from(ACTIONS), resources, contexts())
def test_statements_agree_with_the_reference(statement, action, resource, context):
    request = Request(action, context, None if resource is None else (resource,))
    expected = ref.statement_applies(statement, action, resource, context)
    assert _truth(statement_applies(statement, request)[0]) == _truth(expected), (statement, request)


@st.composite
def resource_cases(draw) -> tuple[dict[str, Any], str, str | None, RequestContext]:
    """A Resource or NotResource made from the very ARN the request names, so that most patterns match."""
    resource = draw(st.sampled_from(RESOURCES))
    patterns = draw(st.lists(arn_patterns([resource], short=draw(st.booleans())), min_size=1, max_size=2))
    element = draw(st.sampled_from(["Resource", "Resource", "NotResource"]))
    statement = {"Effect": "Allow", "Action": "*", element: patterns}
    return statement, draw(st.sampled_from([resource, resource, resource, None, *RESOURCES])), draw(contexts())


@settings(max_examples=1000, **SETTINGS)
@given(resource_cases())
def test_resource_patterns_agree_with_the_reference(case):
    statement, resource, context = case
    request = Request("ec2:DeleteVpc", context, None if resource is None else (resource,))
    expected = ref.statement_applies(statement, "ec2:DeleteVpc", resource, context)
    assert _truth(statement_applies(statement, request)[0]) == _truth(expected), (statement, request)


@st.composite
def arn_condition_cases(draw) -> tuple[dict[str, Any], RequestContext]:
    """An ARN operator on aws:PrincipalArn or aws:SourceArn, its patterns made from the request's own value."""
    context = draw(contexts())
    key = draw(st.sampled_from(ARN_KEYS))
    value = context.values.get(key.lower())
    bases = list(value) if value else PRINCIPAL_ARNS
    operator = draw(st.sampled_from(ARN_OPERATORS).flatmap(_operator))
    short = draw(st.integers(0, 4)) == 0
    patterns = draw(st.lists(arn_patterns(bases, short=short).filter(lambda p: p != "*"), min_size=1, max_size=2))
    return {operator: {key: patterns}}, context


@settings(max_examples=800, **SETTINGS)
@given(arn_condition_cases())
def test_arn_conditions_agree_with_the_reference(case):
    block, context = case
    assert _truth(evaluate_condition(block, context).truth) == _truth(ref.condition_block(block, context)), case


DECISIONS: Counter[str] = Counter()


@settings(max_examples=600, **SETTINGS)
@given(hierarchies, st.sampled_from(ACTIONS), resources, contexts())
def _scp_decisions_agree(levels, action, resource, context):
    request = Request(action, context, None if resource is None else (resource,))
    policies = [[Policy(f"l{i}p{j}", d) for j, d in enumerate(level)] for i, level in enumerate(levels)]
    expected = ref.decide(levels, action, resource, context)
    assert evaluate_scps(policies, request).decision == expected, (levels, request)
    DECISIONS[expected] += 1


def test_scp_decisions_agree_with_the_reference_and_reach_every_outcome():
    DECISIONS.clear()
    _scp_decisions_agree()
    # a comparison that only ever saw implicit denies would prove little
    assert min(DECISIONS[d] for d in ("Allow", "Deny", "Indeterminate")) >= 50, DECISIONS


# --- What the comparison found: netguard was wrong each time, by these pages ---------------------------------

ROLE = {"aws:PrincipalType": "AssumedRole", "aws:PrincipalArn": "arn:aws:iam::111111111111:role/admin"}
NO_USERNAME = RequestContext.build(ROLE, absent=["aws:username", "aws:PrincipalTag/team"])
UNKNOWN_USERNAME = RequestContext.build(ROLE)  # neither aws:username nor the team tag known either way


def _scps(*statements: dict[str, Any]) -> list[list[Policy]]:
    return [
        [Policy("full", FULL_AWS_ACCESS), Policy("guard", {"Version": "2012-10-17", "Statement": list(statements)})]
    ]


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("StringEquals", "${aws:username}", False),
        ("StringLike", "${aws:username}*", False),
        ("StringEqualsIgnoreCase", "x${aws:PrincipalTag/team}", False),
        ("StringNotEquals", "${aws:username}", True),
        ("StringNotLike", "${aws:username}*", True),
        ("ArnLike", "arn:aws:iam::111111111111:role/${aws:username}", False),
        ("ArnNotLike", "arn:aws:iam::111111111111:role/${aws:username}", True),
        ("ForAllValues:StringNotEquals", "${aws:username}", True),
        ("ForAnyValue:StringEquals", "${aws:username}", False),
    ],
)
def test_a_variable_with_no_value_is_null_in_a_condition(operator, value, expected):
    """IAM User Guide, "IAM policy elements: Variables and tags", Policy variables with no value: a variable
    whose key the request does not carry has no equal or like value; StringEquals and StringLike do not
    match it, StringNotEquals and StringNotLike do. It was Indeterminate."""
    key = "aws:PrincipalArn" if operator.startswith(("Arn", "ForAnyValue:Arn")) else "aws:PrincipalType"
    assert evaluate_condition({operator: {key: value}}, NO_USERNAME).truth is expected
    assert evaluate_condition({operator: {key: value}}, UNKNOWN_USERNAME).truth is None  # unknown stays unknown


def test_the_documented_deny_applies_when_the_principal_tag_is_not_set():
    """The page's own example: a Deny with StringNotEquals against ${aws:PrincipalTag/Team} denies a principal
    without the tag."""
    deny = {
        "Effect": "Deny",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::bucket/*",
        "Condition": {"StringNotEquals": {"s3:ExistingObjectTag/Team": "${aws:PrincipalTag/Team}"}},
    }
    tagged_object = {**ROLE, "s3:ExistingObjectTag/Team": "red"}
    obj = ("arn:aws:s3:::bucket/report",)
    request = Request("s3:GetObject", RequestContext.build(tagged_object, absent=["aws:PrincipalTag/Team"]), obj)
    assert evaluate_scps(_scps(deny), request).decision == "Deny"
    unknown = Request("s3:GetObject", RequestContext.build(tagged_object), obj)
    assert evaluate_scps(_scps(deny), unknown).decision == "Indeterminate"
    same_team = Request("s3:GetObject", RequestContext.build({**tagged_object, "aws:PrincipalTag/Team": "red"}), obj)
    assert evaluate_scps(_scps(deny), same_team).decision == "Allow"


def test_a_variable_with_no_value_matches_no_resource():
    """Policy variables with no value: in Resource or NotResource, the pattern matches no resource. A role
    has no aws:username ("Principal key values")."""
    home = "arn:aws:s3:::bucket/${aws:username}/*"
    resource = ("arn:aws:s3:::bucket/ann/notes",)
    allow_home = [[Policy("home", {"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": home}})]]
    assert evaluate_scps(allow_home, Request("s3:GetObject", NO_USERNAME, resource)).decision == "Deny"
    assert evaluate_scps(allow_home, Request("s3:GetObject", UNKNOWN_USERNAME, resource)).decision == "Indeterminate"
    ann = RequestContext.build({"aws:username": "ann"})
    assert evaluate_scps(allow_home, Request("s3:GetObject", ann, resource)).decision == "Allow"
    # NotResource: nothing is excluded, so a Deny outside the caller's home denies the role everywhere
    deny_elsewhere = {"Effect": "Deny", "Action": "s3:*", "NotResource": home}
    assert evaluate_scps(_scps(deny_elsewhere), Request("s3:GetObject", NO_USERNAME, resource)).decision == "Deny"
    assert evaluate_scps(_scps(deny_elsewhere), Request("s3:GetObject", ann, resource)).decision == "Allow"


def test_a_default_stands_in_only_for_a_key_known_to_be_absent():
    """ "IAM policy elements: Variables and tags", Specifying default values: the default replaces a key with
    no value. A key the record cannot supply might hold a value, so the default was a guess (a definite
    Deny where the answer depends on the principal's tags)."""
    condition = {"StringEquals": {"aws:RequestTag/team": "${aws:PrincipalTag/team, 'red'}"}}
    absent = RequestContext.build({"aws:RequestTag/team": "red"}, absent=["aws:PrincipalTag/team"])
    unknown = RequestContext.build({"aws:RequestTag/team": "red"})
    blue = RequestContext.build({"aws:RequestTag/team": "red", "aws:PrincipalTag/team": "blue"})
    assert evaluate_condition(condition, absent).truth is True
    result = evaluate_condition(condition, unknown)
    assert result.truth is None and result.missing == ["aws:PrincipalTag/team"]
    assert evaluate_condition(condition, blue).truth is False


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("a${*}", "a*", True),
        ("a${*}", "abc", False),
        ("a${?}", "a?", True),
        ("a${?}", "ab", False),
        ("${$}a", "$a", True),
    ],
)
def test_special_variables_are_characters_not_wildcards(pattern, value, expected):
    """ "IAM policy elements: Variables and tags", Special characters: ${*} and ${?} stand for an asterisk and
    a question mark where a literal one would be a wildcard. They matched as wildcards."""
    context = RequestContext.build({"s3:prefix": value})
    assert evaluate_condition({"StringLike": {"s3:prefix": pattern}}, context).truth is expected
    statement = {"Effect": "Allow", "Action": "*", "Resource": f"arn:aws:s3:::bucket/{pattern}"}
    request = Request("s3:GetObject", context, (f"arn:aws:s3:::bucket/{value}",))
    assert statement_applies(statement, request)[0] is expected


def test_null_with_several_values_ors_them():
    """ "Conditions with multiple context keys or values": a key's values OR together, for Null as for every
    operator. Only the first value was read."""
    condition = {"Null": {"aws:TagKeys": ["false", "true"]}}
    assert evaluate_condition(condition, RequestContext.build({"aws:TagKeys": ["team"]})).truth is True
    assert evaluate_condition(condition, RequestContext.build({}, absent=["aws:TagKeys"])).truth is True


@pytest.fixture
def tokyo():
    """The local zone of a machine east of UTC, restored afterwards."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    yield
    if saved is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = saved
    time.tzset()


def test_dates_in_the_w3c_forms_and_in_utc(tokyo):
    """ "Condition operators", date operators: values in the W3C profiles of ISO 8601 or epoch time.
    YYYY-MM was refused (never matching), and a date without a time was midnight in the machine's zone."""
    may_31 = RequestContext.build({"aws:CurrentTime": "2020-05-31T20:00:00Z"})
    assert evaluate_condition({"DateLessThan": {"aws:CurrentTime": "2020-06"}}, may_31).truth is True
    assert evaluate_condition({"DateGreaterThanEquals": {"aws:CurrentTime": "2020-06"}}, may_31).truth is False
    # 20:00 UTC on 31 May is 1 June in Tokyo, but "2020-06-01" is midnight UTC
    assert evaluate_condition({"DateLessThan": {"aws:CurrentTime": "2020-06-01"}}, may_31).truth is True


def test_what_the_request_settles_is_not_left_open():
    """Three-valued logic over the documented connectives ("Conditions with multiple context keys or values",
    "IAM JSON policy elements: Resource" and NotResource): a key's policy values OR together, so one that
    matches settles it whatever an unresolvable one says; an absent key decides a condition without its
    values; NotResource * excludes every resource, named or not. Each was Indeterminate."""
    either = ["${aws:PrincipalTag/x}", "AssumedRole"]
    assert evaluate_condition({"StringEquals": {"aws:PrincipalType": either}}, UNKNOWN_USERNAME).truth is True
    assert evaluate_condition({"StringNotEquals": {"aws:PrincipalType": either}}, UNKNOWN_USERNAME).truth is False
    neither = ["${aws:PrincipalTag/x}", "User"]
    assert evaluate_condition({"StringEquals": {"aws:PrincipalType": neither}}, UNKNOWN_USERNAME).truth is None
    absent_key = RequestContext.build({}, absent=["aws:username"])
    assert evaluate_condition({"StringNotEquals": {"aws:username": either}}, absent_key).truth is True
    assert evaluate_condition({"StringEquals": {"aws:username": either}}, absent_key).truth is False
    two = {"Effect": "Allow", "Action": "*", "Resource": ["arn:aws:s3:::${aws:PrincipalTag/x}", "arn:aws:s3:::b/*"]}
    assert statement_applies(two, Request("s3:GetObject", UNKNOWN_USERNAME, ("arn:aws:s3:::b/k",)))[0] is True
    nowhere = {"Effect": "Deny", "Action": "*", "NotResource": "*"}
    assert statement_applies(nowhere, Request("s3:GetObject", UNKNOWN_USERNAME, None))[0] is False
    assert evaluate_scps(_scps(nowhere), Request("s3:GetObject", UNKNOWN_USERNAME, None)).decision == "Allow"


MULTI: Counter[str] = Counter()


@settings(max_examples=400, **SETTINGS)
@given(hierarchies, st.sampled_from(ACTIONS), st.lists(st.sampled_from(RESOURCES), min_size=2, max_size=3), contexts())
def _multi_resource_decisions_agree(levels, action, resources, context):
    request = Request(action, context, tuple(resources))
    policies = [[Policy(f"l{i}p{j}", d) for j, d in enumerate(level)] for i, level in enumerate(levels)]
    expected = ref.decide_each(levels, action, resources, context)
    assert evaluate_scps(policies, request).decision == expected, (levels, request)
    MULTI[expected] += 1


def test_requests_on_several_resources_agree_with_the_reference():
    MULTI.clear()
    _multi_resource_decisions_agree()
    assert set(MULTI) == {"Allow", "Deny", "Indeterminate"}, MULTI


def test_an_allow_on_one_of_a_peering_requests_resources_is_not_enough():
    """CreateVpcPeeringConnection is authorized on the peering and on both VPCs ("Actions, resources,
    and condition keys for Amazon EC2"): an SCP level allowing only the VPCs denies it, and a Deny on
    the accepter's VPC alone denies it."""
    context = RequestContext.build({"aws:PrincipalArn": "arn:aws:iam::111111111111:role/dev"})
    resources = (
        "arn:aws:ec2:eu-west-1:111111111111:vpc-peering-connection/*",
        "arn:aws:ec2:eu-west-1:111111111111:vpc/vpc-1",
        "arn:aws:ec2:eu-west-1:222222222222:vpc/vpc-2",
    )
    request = Request("ec2:CreateVpcPeeringConnection", context, resources)
    vpcs_only = {"Statement": {"Effect": "Allow", "Action": "ec2:*", "Resource": "arn:aws:ec2:*:*:vpc/*"}}
    assert evaluate_scps([[Policy("vpcs", vpcs_only)]], request).decision == "Deny"
    deny_foreign = {"Statement": {"Effect": "Deny", "Action": "ec2:*", "Resource": "arn:aws:ec2:*:222222222222:vpc/*"}}
    full = Policy("full", FULL_AWS_ACCESS)
    decision = evaluate_scps([[full, Policy("foreign", deny_foreign)]], request)
    assert decision.decision == "Deny" and decision.denied_by == [("foreign", None)]
    not_resource = {"Statement": {"Effect": "Deny", "Action": "ec2:*", "NotResource": list(resources[:2])}}
    assert evaluate_scps([[full, Policy("nr", not_resource)]], request).decision == "Deny"
    assert (
        evaluate_scps([[full, Policy("nr", not_resource)]], replace(request, resources=resources[:2])).decision
        == "Allow"
    )
