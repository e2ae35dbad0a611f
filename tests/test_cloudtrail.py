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


def _shapes() -> dict[str, tuple[bytes, int, str | None]]:
    """Every shape a CloudTrail file comes in, good and bad: name -> (bytes, records, error)."""
    log = json.dumps({"Records": SEED[:3]}).encode()
    fixture = FIXTURES / "cloudtrail" / "flow-logs.json"  # a log file with an extra top-level key
    return {
        "log.json": (log, 3, None),
        "log.json.gz": (gzip.compress(log), 3, None),
        "log.gz": (gzip.compress(log), 3, None),
        "fixture.json": (fixture.read_bytes(), len(json.loads(fixture.read_text())["Records"]), None),
        "list.json": (json.dumps(SEED[:2]).encode(), 2, None),
        "one.json": (json.dumps(SEED[0]).encode(), 1, None),
        "bom.json": (b"\xef\xbb\xbf" + log, 3, None),  # orjson refuses a byte order mark; json reads it
        "mixed.json": (
            json.dumps({"Records": [SEED[0], "garbage", SEED[1]]}).encode(),
            2,
            "record 1 is not a JSON object",
        ),
        "cut.json.gz": (gzip.compress(log)[:200], 0, "corrupt gzip: truncated gzip stream"),
        "bad.json": (b'{"Records": [', 0, "invalid JSON: Expecting value (line 1 column 14)"),
        "latin1.json": (b'{"Records": ["\xff"]}', 0, "not valid UTF-8 (byte 14)"),
        "deep.json": (b"[" * 5000 + b"]" * 5000, 0, "JSON nested too deeply to parse"),
        "other.json": (b'{"hello": 1}', 0, "no CloudTrail records"),
    }


def test_simulate_and_replay_read_every_shape_through_one_reader(tmp_path, monkeypatch):
    from netguard.iam.evaluator import FULL_AWS_ACCESS, Policy
    from netguard.policy import cloudtrail
    from netguard.policy import replay as rp

    calls = []
    reader = cloudtrail.decode_records

    def spy(raw, name, *limits):
        calls.append(name)
        return reader(raw, name, *limits)

    monkeypatch.setattr(cloudtrail, "decode_records", spy)
    levels = [[Policy("FullAWSAccess", FULL_AWS_ACCESS)]]
    for name, (raw, records, error) in _shapes().items():
        path = tmp_path / name
        path.write_bytes(raw)
        simulated = simulate(levels, [path])
        replayed = rp.replay(rp.compile_policies(levels), rp.Source(str(path)), rp.Filters())
        assert calls == [str(path), str(path)], name  # each command decoded the file once, through the one reader
        calls.clear()
        assert len(simulated.results) == replayed.records == records, name
        errors = [(e.file, e.message) for e in simulated.errors]
        assert [(e.file, e.message) for e in replayed.errors] == errors, name
        if error is None:
            assert errors == [], name
        else:
            assert len(errors) == 1 and error in errors[0][1], (name, errors)
