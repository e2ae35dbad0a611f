"""The one IAM action/ARN matcher and the statement analysis built on it."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from netguard.iam.actions import action_matches, actions_granted, arn_matches, resource_is_unrestricted
from netguard.iam.statements import risky_statements

GUARDED = ("ec2:DeleteVpc", "ec2:DeleteDhcpOptions", "ec2:AllocateAddress")


def test_action_matching_is_case_insensitive_with_wildcards():
    assert action_matches("EC2:deletevpc", "ec2:DeleteVpc")
    assert action_matches("ec2:Delete*", "ec2:DeleteVpc")
    assert action_matches("*", "ec2:DeleteVpc")
    assert action_matches("ec2:DeleteV?c", "ec2:DeleteVpc")
    assert not action_matches("ec2:DeleteV?c", "ec2:DeleteVpcs")
    assert not action_matches("ec2:Delete", "ec2:DeleteVpc")
    assert not action_matches("ec2:DeleteVpc", "ec2:DeleteVpcEndpoints")
    assert not action_matches("s3:*", "ec2:DeleteVpc")


def test_not_action_grants_the_complement():
    assert actions_granted(["ec2:Delete*"], GUARDED, negated=True) == ["ec2:AllocateAddress"]
    assert actions_granted(["iam:*"], GUARDED, negated=True) == list(GUARDED)


def test_arn_matching_is_per_segment_and_case_sensitive():
    role = "arn:aws:iam::123456789012:role/network/NetworkAdmin"
    assert arn_matches("arn:aws:iam::*:role/network/*", role)
    assert arn_matches("arn:aws:iam::123456789012:role/*", role)
    assert not arn_matches("arn:aws:iam::123456789012:role/network/networkadmin", role)
    assert not arn_matches("arn:aws:iam::*", role)  # too few segments never matches
    assert arn_matches("*", role)


def test_unrestricted_resources():
    assert resource_is_unrestricted("*")
    assert resource_is_unrestricted("arn:aws:ec2:*:*:*")
    assert resource_is_unrestricted("arn:aws:ec2:us-east-1:123456789012:vpc/*")
    assert not resource_is_unrestricted("arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0123")
    assert not resource_is_unrestricted("not-an-arn")


def test_risky_statements_semantics():
    def doc(**statement):
        return {"Version": "2012-10-17", "Statement": statement}

    assert risky_statements(doc(Effect="Allow", Action="ec2:deletevpc", Resource="*"), GUARDED)
    assert not risky_statements(doc(Effect="Deny", Action="ec2:*", Resource="*"), GUARDED)
    assert not risky_statements(
        doc(Effect="Allow", Action="ec2:*", Resource="*", Condition={"Bool": {"aws:SecureTransport": "true"}}), GUARDED
    )
    assert not risky_statements(
        doc(Effect="Allow", Action="ec2:DeleteVpc", Resource="arn:aws:ec2:*:1:vpc/vpc-1"), GUARDED
    )
    assert risky_statements(
        doc(Effect="Allow", Action="ec2:DeleteVpc", NotResource="arn:aws:ec2:*:1:vpc/vpc-1"), GUARDED
    )
    hit = risky_statements(doc(Sid="All", Effect="Allow", NotAction=["ec2:Delete*"], Resource="*"), GUARDED)
    assert hit and hit[0].actions == ("ec2:AllocateAddress",) and hit[0].sid == "All"
    # A value netguard cannot resolve fails closed.
    assert risky_statements(doc(Effect="Allow", Action=[{"Ref": "SomeParameter"}], Resource="*"), GUARDED)


_ACTION_CHARS = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=12
)


@given(service=_ACTION_CHARS, name=_ACTION_CHARS)
def test_an_action_matches_itself_in_any_case(service, name):
    action = f"{service}:{name}"
    assert action_matches(action, action)
    assert action_matches(action.swapcase(), action)
    assert action_matches(f"{service}:*", action)
    assert action_matches("*", action)


@given(pattern=st.text(alphabet="ab*?:", max_size=8), action=st.text(alphabet="ab:", max_size=8))
def test_wildcard_matching_agrees_with_a_reference_regex(pattern, action):
    reference = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    assert action_matches(pattern, action) == bool(re.fullmatch(reference, action, re.IGNORECASE | re.DOTALL))


@given(
    st.lists(
        st.sampled_from(["arn", "aws", "aws-cn", "iam", "ec2", "", "123", "role/x", "*", "ro*", "?ws"]),
        min_size=6,
        max_size=6,
    )
)
def test_arn_pattern_is_per_segment(segments):
    pattern = ":".join(segments)
    arn = "arn:aws:iam::123:role/x"
    expected = all(
        re.fullmatch("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in p), a)
        for p, a in zip(segments, arn.split(":", 5), strict=True)
    )
    assert arn_matches(pattern, arn) == bool(expected)
