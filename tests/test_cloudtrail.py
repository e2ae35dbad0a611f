"""Reading CloudTrail files and building request contexts from records."""

from __future__ import annotations

import gzip
import json

from netguard.policy.cloudtrail import RecordError, parse_record, read_records
from netguard.policy.simulate import load_policy_levels, simulate
from tests.conftest import FIXTURES

SEED = json.loads((FIXTURES / "cloudtrail" / "seed-events.json").read_text())["Records"]


def test_gzip_list_and_single_record_shapes(tmp_path):
    gz = tmp_path / "trail.json.gz"
    gz.write_bytes(gzip.compress(json.dumps({"Records": SEED[:3]}).encode()))
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps(SEED[:2]))
    single = tmp_path / "one.json"
    single.write_text(json.dumps(SEED[0]))
    assert [len(list(read_records(p))) for p in (gz, listed, single)] == [3, 2, 1]


def test_broken_files_are_errors_with_file_and_position(tmp_path):
    truncated = tmp_path / "cut.json.gz"
    truncated.write_bytes(gzip.compress(json.dumps({"Records": SEED}).encode())[:200])
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"Records": [')
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    for path, words in ((truncated, "corrupt gzip"), (bad_json, "invalid JSON"), (other, "no CloudTrail records")):
        (error,) = list(read_records(path))
        assert isinstance(error, RecordError) and words in error.message and error.file == str(path)
    (error,) = list(read_records(bad_json))
    assert error.position == "line 1 column 14"


def test_records_missing_fields_are_reported_and_the_rest_is_evaluated(tmp_path):
    broken = dict(SEED[0])
    del broken["userIdentity"]
    trail = tmp_path / "mixed.json"
    trail.write_text(json.dumps({"Records": [broken, SEED[0], "not a record"]}))
    levels, _ = load_policy_levels(tmp_path / "none")  # no policies folder: still evaluates records
    outcome = simulate([[]], [trail])
    assert [r["eventID"] for r in outcome.results] == [SEED[0]["eventID"]]
    messages = [e.message for e in outcome.errors]
    assert any("record 0" in m and "userIdentity" in m for m in messages)
    assert any("record 2" in m for m in messages)
    assert levels == []


def test_request_context_from_an_assumed_role_record():
    record = next(
        r
        for r in SEED
        if "NetworkAdmin" in json.dumps(r["userIdentity"])
        and r["eventName"] == "DeleteDhcpOptions"
        and "sso" not in json.dumps(r["userIdentity"])
    )
    parsed = parse_record(record)
    context = parsed.request.context
    assert parsed.principal == "arn:aws:iam::123456789012:role/network/NetworkAdmin"
    assert context.lookup("aws:PrincipalArn") == (parsed.principal,)
    assert context.lookup("aws:principaltype") == ("AssumedRole",)
    assert context.lookup("aws:RequestedRegion") == ("eu-west-1",)
    assert context.lookup("aws:SourceIp") == ("203.0.113.10",)
    assert context.lookup("aws:username") == ()
    assert context.lookup("aws:PrincipalTag/team") is None
    assert parsed.request.action == "ec2:DeleteDhcpOptions"
    assert parsed.request.resources == ("arn:aws:ec2:eu-west-1:123456789012:dhcp-options/dopt-0a1b2c3d4e5f67890",)


def test_nested_delete_flow_logs_and_service_linked_roles():
    trail = json.loads((FIXTURES / "cloudtrail" / "flow-logs.json").read_text())["Records"]
    parsed = parse_record(trail[0])
    assert parsed.request.resources == ("arn:aws:ec2:eu-west-1:123456789012:vpc-flow-log/fl-0a1b2c3d4e5f67890",)
    slr = next(r for r in SEED if "aws-service-role" in json.dumps(r["userIdentity"]))
    assert parse_record(slr).scp_exempt_reason == "SCPs do not restrict service-linked roles"
    root = next(r for r in SEED if r["userIdentity"]["type"] == "Root" and r["recipientAccountId"] == "999999999999")
    assert parse_record(root, management_account="999999999999").scp_exempt_reason
    assert parse_record(root).scp_exempt_reason is None
