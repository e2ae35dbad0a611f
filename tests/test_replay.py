"""Replaying CloudTrail history against the guardrails: exact counts, S3, broken files, filters."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from netguard.cli import main
from netguard.policy import replay as rp
from netguard.policy.orgconfig import load_org_config
from netguard.policy.render import render_to_dir
from netguard.policy.simulate import load_policy_levels, simulate
from tests.conftest import FIXTURES

ORG = FIXTURES / "org" / "org.yaml"
SEED = json.loads((FIXTURES / "cloudtrail" / "seed-events.json").read_text())["Records"]
FLOW = json.loads((FIXTURES / "cloudtrail" / "flow-logs.json").read_text())["Records"]
DAY = "AWSLogs/123456789012/CloudTrail/eu-west-1/2026/11/02"


@pytest.fixture
def compiled(tmp_path):
    render_to_dir(load_org_config(ORG), tmp_path / "scp")
    levels, _ = load_policy_levels(tmp_path / "scp")
    return rp.compile_policies(levels)


def _write_logs(root: Path) -> None:
    (root / DAY).mkdir(parents=True)
    (root / DAY / "part-1.json.gz").write_bytes(gzip.compress(json.dumps({"Records": SEED}).encode()))
    (root / DAY / "part-2.json").write_text(json.dumps({"Records": FLOW}))
    other = root / "AWSLogs/210987654321/CloudTrail/us-east-1/2026/10/01"
    other.mkdir(parents=True)
    moved = [
        {**r, "recipientAccountId": "210987654321", "awsRegion": "us-east-1", "eventTime": "2026-10-01T08:00:00Z"}
        for r in SEED
        if r["netguard-expect"]["decision"] == "Deny"
    ]
    (other / "part-3.json.gz").write_bytes(gzip.compress(json.dumps({"Records": moved}).encode()))


def _expected_denies(records: list[dict]) -> int:
    return sum(1 for r in records if r["netguard-expect"]["decision"] == "Deny")


def _denied(totals: rp.Totals) -> int:
    return sum(group["count"] for key, group in totals.groups.items() if key[0] == "Deny")


def test_replay_counts_match_the_fixture_expectations(tmp_path, compiled):
    _write_logs(tmp_path / "logs")
    management = load_org_config(ORG).management_account_id
    totals = rp.replay(compiled, rp.Source(str(tmp_path / "logs")), rp.Filters(), management_account=management)
    assert totals.errors == []
    assert totals.files == 3
    assert totals.records == len(SEED) + len(FLOW) + _expected_denies(SEED)
    assert _denied(totals) == _expected_denies(SEED) * 2 + _expected_denies(FLOW)
    developer = [
        g
        for k, g in totals.groups.items()
        if k[0] == "Deny" and k[1].endswith("role/Developer") and k[2] == "ec2:DeleteDhcpOptions"
    ]
    # one group per account, holding DeleteDhcpOptions and the record that writes it deletedhcpoptions
    assert [g["count"] for g in developer] == [2, 2]
    group = developer[0]
    assert group["first_seen"] <= group["last_seen"] and len(group["samples"]) == 2


def test_replay_matches_simulate_record_by_record(tmp_path, compiled):
    trail = FIXTURES / "cloudtrail" / "seed-events.json"
    outcome = simulate(compiled.levels, [trail], "999999999999")
    for record, result in zip(SEED, outcome.results, strict=True):
        assert rp.evaluate_record(compiled, record, "999999999999")["decision"] == result["decision"]


def test_filters_by_account_region_and_time(tmp_path, compiled):
    _write_logs(tmp_path / "logs")
    only_other = rp.replay(
        compiled, rp.Source(str(tmp_path / "logs")), rp.Filters(accounts=frozenset({"210987654321"}))
    )
    assert only_other.files == 1 and _denied(only_other) == _expected_denies(SEED)
    region = rp.replay(compiled, rp.Source(str(tmp_path / "logs")), rp.Filters(regions=frozenset({"eu-west-1"})))
    assert region.files == 2
    from datetime import datetime

    november = rp.replay(
        compiled,
        rp.Source(str(tmp_path / "logs")),
        rp.Filters(since=datetime(2026, 11, 1), until=datetime(2026, 11, 30)),
        management_account="999999999999",
    )
    assert november.files == 2 and _denied(november) == _expected_denies(SEED) + _expected_denies(FLOW)


def test_parallel_replay_gives_the_same_answer(tmp_path, compiled):
    _write_logs(tmp_path / "logs")
    one = rp.replay(compiled, rp.Source(str(tmp_path / "logs")), rp.Filters(), jobs=1)
    two = rp.replay(compiled, rp.Source(str(tmp_path / "logs")), rp.Filters(), jobs=2)
    assert {k: g["count"] for k, g in one.groups.items()} == {k: g["count"] for k, g in two.groups.items()}


def test_parallel_replay_gives_the_same_report_errors_and_all(tmp_path, compiled):
    """Workers finish files in any order; the JSON report, its errors included, is the one a single
    worker gives (files in the listing's order, each file's records in order)."""
    for index in range(12):
        broken = [*SEED, "garbage", {"eventID": f"x-{index}"}]
        (tmp_path / "logs" / DAY).mkdir(parents=True, exist_ok=True)
        (tmp_path / "logs" / DAY / f"part-{index:02d}.json").write_text(json.dumps({"Records": broken}))
    (tmp_path / "logs" / DAY / "part-05.json").write_text("{not json")
    one = rp.replay(compiled, rp.Source(str(tmp_path / "logs")), rp.Filters(), jobs=1)
    assert len({e.file for e in one.errors}) == 12
    for _ in range(3):
        two = rp.replay(compiled, rp.Source(str(tmp_path / "logs")), rp.Filters(), jobs=2)
        assert rp.to_json(two) == rp.to_json(one)


def test_broken_files_and_records_are_reported_and_the_replay_goes_on(tmp_path, compiled):
    _write_logs(tmp_path / "logs")
    (tmp_path / "logs" / DAY / "cut.json.gz").write_bytes(gzip.compress(json.dumps({"Records": SEED}).encode())[:300])
    broken = [dict(SEED[0]), "garbage", {"eventID": "x"}]
    del broken[0]["userIdentity"]
    (tmp_path / "logs" / DAY / "bad-records.json").write_text(json.dumps({"Records": broken}))
    totals = rp.replay(compiled, rp.Source(str(tmp_path / "logs")), rp.Filters(), management_account="999999999999")
    messages = sorted((Path(e.file).name, e.message) for e in totals.errors)
    assert messages[0][0] == "bad-records.json" and "record 0" in messages[0][1] and "userIdentity" in messages[0][1]
    assert any(name == "bad-records.json" and "record 1 is not a JSON object" in m for name, m in messages)
    assert any(name == "bad-records.json" and "record 2" in m and "eventSource" in m for name, m in messages)
    assert any(name == "cut.json.gz" and "truncated gzip" in m for name, m in messages)
    assert _denied(totals) == _expected_denies(SEED) * 2 + _expected_denies(FLOW)


def test_replay_from_s3_through_moto(tmp_path, compiled, monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    _write_logs(tmp_path / "logs")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="org-trail")
        for file in (tmp_path / "logs").rglob("*"):
            if file.is_file():
                s3.put_object(
                    Bucket="org-trail",
                    Key=f"trail/{file.relative_to(tmp_path / 'logs').as_posix()}",
                    Body=file.read_bytes(),
                )
        source = rp.Source("s3://org-trail/trail/AWSLogs", s3)
        totals = rp.replay(compiled, source, rp.Filters(accounts=frozenset({"123456789012"})))
    assert totals.files == 2 and totals.errors == []
    assert _denied(totals) == _expected_denies(SEED) + _expected_denies(FLOW)


@pytest.mark.parametrize("fmt", ["text", "json", "csv"])
def test_replay_cli_formats(tmp_path, capsys, fmt):
    _write_logs(tmp_path / "logs")
    assert main(["policy", "render", "--config", str(ORG), "--out", str(tmp_path / "scp")]) == 0
    capsys.readouterr()
    code = main(
        [
            "policy",
            "replay",
            "--policies",
            str(tmp_path / "scp"),
            "--source",
            str(tmp_path / "logs"),
            "--config",
            str(ORG),
            "--format",
            fmt,
            "--jobs",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    if fmt == "json":
        groups = json.loads(out)["groups"]
        assert sum(g["count"] for g in groups if g["decision"] == "Deny") == (
            _expected_denies(SEED) * 2 + _expected_denies(FLOW)
        )
    elif fmt == "csv":
        assert out.splitlines()[0].startswith("decision,count,principal,action")
    else:
        assert "would be denied" in out.splitlines()[-1]


def test_a_file_is_replayed_with_the_collector_off_and_the_collector_comes_back(compiled):
    """Replayer.file turns the cyclic garbage collector off for a file's work (decoded JSON holds no
    cycles) and on again after it, whether the file replays, is not JSON, or makes the replay fail."""
    import gc

    seen = []

    class Watching(rp.Compiled):
        def needs_evaluation(self, event_source: str, event_name: str) -> bool:
            seen.append(gc.isenabled())
            if event_name == "Explode":
                raise RuntimeError("boom")
            return super().needs_evaluation(event_source, event_name)

    watching = Watching(**{f: getattr(compiled, f) for f in compiled.__dataclass_fields__})
    replayer = rp.Replayer(watching)
    record = {"eventSource": "ec2.amazonaws.com", "eventName": "DeleteVpc", "userIdentity": {"type": "Root"}}
    assert gc.isenabled()
    for raw in (
        json.dumps({"Records": [record]}).encode(),
        b"{not json",
        json.dumps([{**record, "eventName": "Explode"}]).encode(),
    ):
        replayer.file(raw, "f.json")
        assert gc.isenabled()
    assert seen and not any(seen)
