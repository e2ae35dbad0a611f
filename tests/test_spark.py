"""Replay on Spark (local[2]) gives the report local replay gives, record for record: the fixture logs
and a generated trail of gzip files with guarded and unguarded calls, failed calls, exempt principals,
malformed records and broken files, with and without filters."""

from __future__ import annotations

import gzip
import json
import random
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from netguard.policy import replay as rp
from netguard.policy.cloudtrail import LIMITS, Limits
from netguard.policy.orgconfig import load_org_config
from netguard.policy.render import render_to_dir
from netguard.policy.simulate import load_policy_levels
from tests.conftest import FIXTURES

pyspark = pytest.importorskip("pyspark", reason="the [spark] extra is not installed")

from netguard import spark as ns  # noqa: E402

ORG = FIXTURES / "org" / "org.yaml"
ACCOUNTS = ("111111111111", "222222222222")
REGIONS = ("eu-west-1", "us-east-1")
GUARDED = [
    ("ec2.amazonaws.com", "CreateVpc", {"cidrBlock": "10.0.0.0/16"}),
    ("ec2.amazonaws.com", "DeleteFlowLogs", {"DeleteFlowLogsRequest": {"FlowLogId": {"content": "fl-1", "tag": 1}}}),
    ("ec2.amazonaws.com", "DisassociateAddress", {"associationId": "eipassoc-0a1b2c3d"}),
    ("ec2.amazonaws.com", "DeleteDhcpOptions", {"dhcpOptionsId": "dopt-0a1b2c3d"}),
]
UNGUARDED = [
    ("ec2.amazonaws.com", "DescribeVpcs"),
    ("sts.amazonaws.com", "AssumeRole"),
    ("s3.amazonaws.com", "GetObject"),
]
ROLES = ["role/Developer", "role/network/NetworkAdmin", "role/app/Service", "role/break-glass/Emergency"]


@pytest.fixture(scope="module")
def spark():
    """One local[2] session for the module, small and quiet, stopped at the end."""
    session = ns.session("local[2]", app="netguard-tests")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scp")
    render_to_dir(load_org_config(ORG), folder)
    levels, errors = load_policy_levels(folder)
    assert not errors
    return rp.compile_policies(levels)


def _record(rng: random.Random, account: str, region: str, day: int) -> dict:
    if rng.random() < 0.4:
        source, name, params = rng.choice(GUARDED)
    else:
        (source, name), params = rng.choice(UNGUARDED), {"maxResults": 5}
    role = rng.choice(ROLES)
    record = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::{account}:assumed-role/{role.rsplit('/', 1)[1]}/session",
            "accountId": account,
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{account}:{role}", "accountId": account}
            },
        },
        "eventTime": f"2026-11-{day:02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.10",
        "requestParameters": params,
        "eventID": str(uuid.UUID(int=rng.getrandbits(128))),
        "recipientAccountId": account,
    }
    roll = rng.random()
    if roll < 0.1:
        record["errorCode"] = "Client.UnauthorizedOperation"
    elif roll < 0.13:
        record["userIdentity"] = "not an identity"  # malformed: an error when evaluated, and only then
    return record


def _trail(root: Path, seed: int = 7, files: int = 6, per_file: int = 500) -> Path:
    """Gzip files in the AWSLogs layout, plus files only the local reader takes whole."""
    rng = random.Random(seed)
    for index in range(files):
        account, region, day = ACCOUNTS[index % 2], REGIONS[(index // 2) % 2], 1 + index % 4
        folder = root / f"AWSLogs/{account}/CloudTrail/{region}/2026/11/{day:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        batch = [_record(rng, account, region, day) for _ in range(per_file)]
        (folder / f"{account}_CloudTrail_{index:03d}.json.gz").write_bytes(
            gzip.compress(json.dumps({"Records": batch}).encode())
        )
    odd = root / "odd"
    odd.mkdir()
    some = [_record(rng, ACCOUNTS[0], REGIONS[0], 2) for _ in range(40)]
    (odd / "not-an-object.json").write_text(json.dumps({"Records": [*some[:10], 42, "text", None, *some[10:20]]}))
    (odd / "a-list.json").write_text(json.dumps(some[20:30]))
    nameless = [dict(r) for r in some[30:40]]
    del nameless[3]["eventName"]
    nameless[5]["eventSource"] = 5
    (odd / "nameless.json.gz").write_bytes(gzip.compress(json.dumps({"Records": nameless}).encode()))
    (odd / "truncated.json.gz").write_bytes(gzip.compress(json.dumps({"Records": some}).encode())[:200])
    (odd / "invalid.json").write_text('{"Records": [{"eventSource": ')
    (odd / "single-quotes.json").write_text("{'Records': []}")
    (odd / "empty-records.json").write_text('{"Records": []}')
    (odd / "pretty.json").write_text(json.dumps({"Records": some[:15]}, indent=2))
    return root


def _reports(spark, compiled, location, filters=None, limits: Limits = LIMITS, plan=None) -> tuple[dict, dict]:
    """(local, spark) JSON reports, each with its own Filters so their marks are their own."""
    results = []
    for engine in ("local", "spark"):
        chosen = rp.Filters(**(filters or {}))
        if engine == "local":
            totals = rp.replay(compiled, rp.Source(str(location), limits=limits), chosen, jobs=1)
        else:
            totals = ns.replay(spark, compiled, str(location), chosen, limits=limits, plan=plan)
        results.append(json.loads(rp.to_json(totals, chosen.warnings(totals))))
    return results[0], results[1]


def test_fixture_logs_give_the_local_report(spark, compiled):
    plan: dict = {}
    local, on_spark = _reports(spark, compiled, FIXTURES / "cloudtrail", plan=plan)
    assert local["summary"]["would_be_denied"] > 0 and local["summary"]["files"] >= 4
    assert plan["spark_files"] >= 4  # the CloudTrail files; the Athena, Glue and Lake rows go to the driver
    assert all("/shapes/" in name for name in plan["driver_files"])
    assert on_spark == local


@pytest.fixture(scope="module")
def trail(tmp_path_factory):
    return _trail(tmp_path_factory.mktemp("trail"))


def test_generated_trail_gives_the_local_report_record_for_record(spark, compiled, trail):
    plan: dict = {}
    local, on_spark = _reports(spark, compiled, trail, plan=plan)
    # Spark decides the generated files, the pretty-printed one and the empty one; the driver the rest
    assert plan["spark_files"] == 8
    assert [Path(name).name for name in plan["driver_files"]] == [
        "a-list.json",
        "invalid.json",
        "nameless.json.gz",
        "not-an-object.json",
        "single-quotes.json",
        "truncated.json.gz",
    ]
    assert plan["unguarded_counted"] > 1000 and len(plan["guarded_pairs"]) == 4
    summary = local["summary"]
    assert summary["records"] > 3000 and summary["evaluated"] > 1000
    assert summary["would_be_denied"] > 100 and summary["already_failing"] > 10
    messages = [e["message"] for e in local["errors"]]
    assert any("is not a JSON object" in m for m in messages)
    assert any("corrupt gzip" in m for m in messages)
    assert any("userIdentity" in m for m in messages)  # an evaluation error inside a file Spark read whole
    assert on_spark["groups"] == local["groups"]
    assert on_spark["already_failing"] == local["already_failing"]
    assert on_spark == local


def test_filters_and_their_warnings_match(spark, compiled, trail):
    cases = [
        {"accounts": frozenset({ACCOUNTS[0], "333333333333"}), "regions": frozenset({"eu-west-1", "ap-south-1"})},
        {"since": datetime(2026, 11, 2, 6), "until": datetime(2026, 11, 3, 12, 30)},
        {"accounts": frozenset({"333333333333"})},  # nothing in scope: the "0 records in scope" warning
    ]
    for filters in cases:
        local, on_spark = _reports(spark, compiled, trail, filters)
        assert local["warnings"] or filters.get("since"), filters
        assert on_spark == local, filters


def test_record_errors_are_capped_per_file_as_locally(spark, compiled, trail):
    local, on_spark = _reports(spark, compiled, trail, limits=Limits(max_record_errors=2))
    assert any("more record errors not listed" in e["message"] for e in local["errors"])
    assert on_spark == local


def test_files_past_a_per_file_limit_are_the_local_errors(spark, compiled, trail):
    """Over --max-records or --max-file-bytes, a file goes to the driver, which refuses it as locally."""
    for limits, message in (
        (Limits(max_records=499), "over the limit of 499 per file"),
        (Limits(max_file_bytes=20_000), "--max-file-bytes"),
    ):
        plan: dict = {}
        local, on_spark = _reports(spark, compiled, trail, limits=limits, plan=plan)
        assert any(message in e["message"] for e in local["errors"])
        assert plan["spark_files"] < 8
        assert on_spark == local


def test_a_pre_filter_that_dropped_a_guarded_pair_would_be_caught(spark, compiled, trail, monkeypatch):
    """The equality above is sensitive to the pre-filter: dropping CreateVpc changes the report."""
    local, _ = _reports(spark, compiled, trail)
    assert any(g["action"] == "ec2:CreateVpc" for g in local["groups"])
    real = ns._guarded
    monkeypatch.setattr(ns, "_guarded", lambda c, s, n: n != "CreateVpc" and real(c, s, n))
    _, broken = _reports(spark, compiled, trail)
    assert broken != local
    assert not any(g["action"] == "ec2:CreateVpc" and g["principal"].endswith("Developer") for g in broken["groups"])
    assert broken["summary"]["records"] == local["summary"]["records"]  # still counted, never evaluated


def test_cli_engine_spark_prints_the_local_report(spark, compiled, trail, tmp_path, capsys):
    from netguard.cli import main

    render_to_dir(load_org_config(ORG), tmp_path / "scp")
    outputs = []
    for extra in ([], ["--engine", "spark", "--spark-master", "local[2]"]):
        code = main(
            [
                "policy",
                "replay",
                "--policies",
                str(tmp_path / "scp"),
                "--events",
                str(trail),
                "--format",
                "json",
                "-j",
                "1",
                *extra,
            ]
        )
        outputs.append((code, capsys.readouterr().out))
    assert outputs[0][0] == 2  # the broken files are errors
    assert outputs[1] == outputs[0]


def test_without_pyspark_the_cli_says_what_to_install(compiled, tmp_path, capsys, monkeypatch):
    import sys

    from netguard.cli import main

    render_to_dir(load_org_config(ORG), tmp_path / "scp")
    monkeypatch.setitem(sys.modules, "pyspark", None)
    code = main(
        [
            "policy",
            "replay",
            "--policies",
            str(tmp_path / "scp"),
            "--events",
            str(FIXTURES / "cloudtrail"),
            "--engine",
            "spark",
        ]
    )
    assert code == 2
    assert "install netguard[spark]" in capsys.readouterr().err


def test_org_chains_replay_on_spark_as_locally(spark, capsys, tmp_path):
    """--org: each record against its account's chain, the ChainedPolicies shipped to the executors."""
    from netguard.cli import main
    from tests.test_org_chain import ORG_YAML, org_files

    files = org_files.__wrapped__(tmp_path)
    argv = ["policy", "replay", "--org", str(files["snapshot"]), "--config", str(ORG_YAML)]
    argv += ["--events", str(files["events"]), "--jobs", "1", "--format", "json"]
    reports = []
    for extra in ([], ["--engine", "spark", "--spark-master", "local[2]"]):
        code = main([*argv, *extra])
        reports.append((code, json.loads(capsys.readouterr().out)))
    assert reports[0][1]["summary"]["newly_denied"] == 3
    assert reports[1] == reports[0]


def test_file_names_with_spaces_and_percent_signs_keep_their_names(spark, compiled, tmp_path):
    folder = tmp_path / "a folder %20 with spaces"
    folder.mkdir()
    for source in sorted((FIXTURES / "cloudtrail").glob("*.json")):
        (folder / f"copy of {source.name}").write_bytes(source.read_bytes())
    (folder / "glob [1].json").write_bytes((FIXTURES / "cloudtrail" / "seed-events.json").read_bytes())
    plan: dict = {}
    local, on_spark = _reports(spark, compiled, tmp_path, plan=plan)
    assert plan["spark_files"] == 4  # a name Spark would read as a glob is replayed on the driver
    assert [Path(name).name for name in plan["driver_files"]] == ["glob [1].json"]
    assert on_spark == local


def test_a_location_spark_cannot_read_is_exit_2_in_one_line(spark, tmp_path, capsys):
    from netguard.cli import main

    render_to_dir(load_org_config(ORG), tmp_path / "scp")
    argv = ["policy", "replay", "--policies", str(tmp_path / "scp"), "--events", "nosuchfs://bucket/AWSLogs/"]
    code = main([*argv, "--engine", "spark", "--spark-master", "local[2]"])
    err = capsys.readouterr().err
    assert code == 2
    assert "the Spark job failed" in err and "nosuchfs" in err and "Traceback" not in err


def test_a_frame_of_athena_rows_replays_as_a_file_of_them(spark, compiled, tmp_path):
    """replay_rows: a DataFrame of Athena-table rows gives what local replay gives for a file of the
    same rows, with the malformed rows' errors at their positions."""
    from pyspark.sql import functions as F

    rows = json.loads((FIXTURES / "cloudtrail" / "shapes" / "athena-rows.json").read_text())["Records"]
    nameless = {k: v for k, v in rows[0].items() if k != "eventname"}
    unknown = {**rows[1], "useridentity": None}
    unguarded = {**rows[2], "eventname": "DescribeVpcs"}
    path = tmp_path / "athena.json"
    path.write_text(json.dumps({"Records": [*rows, nameless, *rows, unguarded, unknown]}))
    local = rp.replay(compiled, rp.Source(str(path)), rp.Filters(), jobs=1)
    frame = spark.read.option("multiLine", "true").json(str(path)).select(F.explode("Records").alias("r")).select("r.*")
    on_spark = ns.replay_rows(frame, compiled, name=str(path))
    assert len(local.errors) == 2 and local.records == 2 * len(rows) + 3
    on_spark.files = local.files  # a frame is no file
    assert rp.to_json(on_spark) == rp.to_json(local)
