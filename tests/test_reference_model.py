"""Where netguard's IAM evaluator must answer as AWS documents (issue 16, reference model).

Each test pins a disagreement between netguard's evaluator and a naive reference written from the AWS
documentation, and names the page that settles it.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from netguard.iam.conditions import RequestContext, evaluate_condition
from netguard.iam.evaluator import FULL_AWS_ACCESS, Policy, Request, evaluate_scps, statement_applies

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
