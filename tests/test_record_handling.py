"""Records simulate and replay used to mishandle (issue 16): calls that failed when they were made,
event names in another case, records from Athena, Glue and CloudTrail Lake, and a record whose
evaluation fails. Each test failed before the fix."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from netguard.cli import main
from netguard.iam.evaluator import FULL_AWS_ACCESS, Policy
from netguard.policy import cloudtrail, record_shapes
from netguard.policy import replay as rp
from netguard.policy import simulate as sim
from netguard.policy.cloudtrail import MalformedRecord, parse_record
from netguard.policy.orgconfig import load_org_config
from netguard.policy.render import render_to_dir
from tests.conftest import FIXTURES

ORG = FIXTURES / "org" / "org.yaml"
MANAGEMENT = "999999999999"
TRAILS = FIXTURES / "cloudtrail"
FAILED = TRAILS / "failed-calls.json"
SEED = json.loads((TRAILS / "seed-events.json").read_text())["Records"]


def _records(path: Path) -> list[dict]:
    return json.loads(path.read_text())["Records"]


CLOUDTRAIL = {r["eventID"]: r for name in ("seed-events.json", "flow-logs.json") for r in _records(TRAILS / name)}
SHAPES = sorted((TRAILS / "shapes").glob("*.json"))


@pytest.fixture(scope="module")
def scp(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scp")
    render_to_dir(load_org_config(ORG), folder)
    return folder


@pytest.fixture
def compiled(scp):
    levels, errors = sim.load_policy_levels(scp)
    assert not errors
    return rp.compile_policies(levels)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _replay_cli(capsys, scp: Path, source: Path, fmt: str) -> tuple[int, str, str]:
    return _run(
        capsys,
        *("policy", "replay", "--policies", str(scp), "--source", str(source), "--config", str(ORG)),
        *("--format", fmt, "--jobs", "1"),
    )


# --- 1. calls that failed when they were made -------------------------------------------------------


def _failed_expectations() -> tuple[int, dict[str, str]]:
    records = _records(FAILED)
    denied = sum(1 for r in records if r["netguard-expect"]["decision"] == "Deny")
    failing = {r["eventID"]: r["errorCode"] for r in records if r["netguard-expect"]["decision"] == "AlreadyFailing"}
    assert denied == 1 and len(failing) == 3  # the fixture: three failed calls the guardrails deny, one success
    return denied, failing


def test_replay_json_counts_failed_calls_apart_with_their_error_codes(scp, capsys):
    denied, failing = _failed_expectations()
    code, out, err = _replay_cli(capsys, scp, FAILED, "json")
    assert code == 0, err  # already failing calls are no impact: nothing signals it
    report = json.loads(out)
    assert sum(g["count"] for g in report["groups"] if g["decision"] == "Deny") == denied
    assert all(g["decision"] != "AlreadyFailing" and g["error_code"] is None for g in report["groups"])
    apart = report["already_failing"]
    assert sorted(g["error_code"] for g in apart) == sorted(failing.values())
    assert {g["decision"] for g in apart} == {"AlreadyFailing"} and {g["guardrail_decision"] for g in apart} == {"Deny"}
    assert {s for g in apart for s in g["samples"]} == set(failing)
    by_code = {g["error_code"]: g for g in apart}
    unauthorized = by_code["Client.UnauthorizedOperation"]
    assert unauthorized["action"] == "ec2:DeleteDhcpOptions" and unauthorized["principal"].endswith("role/Developer")
    assert unauthorized["sid"] == "DenyNetworkDestructiveDeletes" and unauthorized["count"] == 1
    summary = report["summary"]
    assert (summary["would_be_denied"], summary["already_failing"], summary["indeterminate"]) == (denied, 3, 0)


def test_replay_text_and_csv_show_failed_calls_apart(scp, capsys):
    denied, failing = _failed_expectations()
    code, out, _ = _replay_cli(capsys, scp, FAILED, "text")
    assert code == 0
    lines = out.splitlines()
    assert f"{denied} would be denied, 0 indeterminate, 3 already failing, 0 errors" in lines[-1]
    heading = next(i for i, line in enumerate(lines) if line.startswith("already failing"))
    assert all(not line.startswith("AlreadyFailing") for line in lines[:heading])
    failing_lines = lines[heading + 1 : -1]
    assert len(failing_lines) == 3 and all(line.startswith("AlreadyFailing") for line in failing_lines)
    for error in failing.values():
        assert sum(f"error {error}," in line for line in failing_lines) == 1
    code, out, _ = _replay_cli(capsys, scp, FAILED, "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sum(int(r["count"]) for r in rows if r["decision"] == "Deny") == denied
    apart = [r for r in rows if r["decision"] == "AlreadyFailing"]
    assert sorted(r["error_code"] for r in apart) == sorted(failing.values())
    assert {r["guardrail_decision"] for r in apart} == {"Deny"}
    assert all(r["error_code"] == "" for r in rows if r["decision"] == "Deny")


def test_simulate_reports_failed_calls_apart_and_keeps_the_error_code(scp, capsys):
    denied, failing = _failed_expectations()
    code, out, _ = _run(
        capsys, "policy", "simulate", "--policies", str(scp), "--events", str(FAILED), "--format", "json"
    )
    assert code == 0
    results = {r["eventID"]: r for r in json.loads(out)["results"]}
    for event_id, error in failing.items():
        result = results[event_id]
        assert (result["decision"], result["guardrail_decision"], result["errorCode"]) == (
            "AlreadyFailing",
            "Deny",
            error,
        )
        assert result["denied_by"]  # what would deny it is still said
    assert sum(1 for r in results.values() if r["decision"] == "Deny") == denied
    allowed = next(r for r in results.values() if r["decision"] == "Allow")
    assert allowed["errorCode"] == "Client.InvalidDhcpOptionsID.NotFound"  # failed, but the guardrails allow it
    code, out, _ = _run(capsys, "policy", "simulate", "--policies", str(scp), "--events", str(FAILED))
    assert code == 0
    assert f"1 Allow, {denied} Deny, 0 Indeterminate, 3 already failing" in out.splitlines()[-1]
    for event_id, error in failing.items():
        line = next(line for line in out.splitlines() if event_id in line)
        assert line.startswith("AlreadyFailing") and f"already failing: {error}" in line


# --- 2. canonical action names --------------------------------------------------------------------


def test_a_lowercase_event_name_is_evaluated_and_grouped_with_the_canonical_one(tmp_path, compiled):
    canonical, lowercase = SEED[0], SEED[-1]
    assert canonical["eventName"] == "DeleteDhcpOptions" and lowercase["eventName"] == "deletedhcpoptions"
    assert compiled.needs_evaluation("ec2.amazonaws.com", "deletedhcpoptions")
    path = tmp_path / "trail.json"
    path.write_text(json.dumps({"Records": [canonical, lowercase]}))
    totals = rp.replay(compiled, rp.Source(str(path)), rp.Filters(), management_account=MANAGEMENT)
    assert totals.errors == [] and totals.evaluated == 2
    ((key, group),) = totals.groups.items()
    assert key[:3] == (
        "Deny",
        canonical["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"],
        "ec2:DeleteDhcpOptions",
    )
    samples = {label for _, label in group["samples"]}  # (eventTime, eventID): the earliest are kept
    assert group["count"] == 2 and samples == {canonical["eventID"], lowercase["eventID"]}
    outcome = sim.simulate(compiled.levels, [path], MANAGEMENT)
    assert [r["action"] for r in outcome.results] == ["ec2:DeleteDhcpOptions", "ec2:DeleteDhcpOptions"]
    assert [r["eventName"] for r in outcome.results] == ["DeleteDhcpOptions", "deletedhcpoptions"]  # as recorded


def test_the_prefilter_ignores_the_case_of_the_event_source_and_name(tmp_path):
    deny = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "cloudwatch:DeleteAlarms", "Resource": "*"}],
    }
    compiled = rp.compile_policies([[Policy("FullAWSAccess", FULL_AWS_ACCESS), Policy("deny.json", deny)]])
    record = {**SEED[0], "eventSource": "Monitoring.amazonaws.com", "eventName": "deletealarms"}
    record["requestParameters"] = {"alarmNames": ["cpu-high"]}
    assert compiled.needs_evaluation("Monitoring.amazonaws.com", "deletealarms")
    path = tmp_path / "trail.json"
    path.write_text(json.dumps([record]))
    totals = rp.replay(compiled, rp.Source(str(path)), rp.Filters())
    assert totals.errors == [] and totals.evaluated == 1
    assert [key[2] for key in totals.groups] == ["cloudwatch:DeleteAlarms"]


def test_canonical_action_names():
    assert record_shapes.canonical_action("ec2:deletedhcpoptions") == "ec2:DeleteDhcpOptions"
    assert record_shapes.canonical_action("EC2:DELETEDHCPOPTIONS") == "ec2:DeleteDhcpOptions"
    assert record_shapes.canonical_action("logs:deleteloggroup") == "logs:DeleteLogGroup"
    assert record_shapes.canonical_action("ec2:NoSuchCall") == "ec2:NoSuchCall"  # unknown: as written
    assert record_shapes.canonical_action("nosuchservice:doIt") == "nosuchservice:doIt"


# --- 3. Athena, Glue and CloudTrail Lake records ----------------------------------------------------


@pytest.mark.parametrize("fixture", SHAPES, ids=lambda p: p.name)
def test_a_table_row_gets_the_decision_of_the_cloudtrail_record(fixture, compiled, tmp_path):
    rows = _records(fixture)
    assert rows
    for row in rows:
        record = CLOUDTRAIL[record_shapes.normalise(row)["eventID"]]
        # the same request to the evaluator, key for key, and so the same decision
        assert parse_record(record_shapes.normalise(row)).request == parse_record(record).request
        got = rp.evaluate_record(compiled, row, MANAGEMENT)
        assert got == rp.evaluate_record(compiled, record, MANAGEMENT)
        assert got["decision"] == row["netguard-expect"]["decision"]
    equivalents = tmp_path / "cloudtrail.json"
    equivalents.write_text(json.dumps({"Records": [CLOUDTRAIL[record_shapes.normalise(r)["eventID"]] for r in rows]}))
    simulated = sim.simulate(compiled.levels, [fixture], MANAGEMENT)
    assert simulated.errors == [] and len(simulated.results) == len(rows)
    assert simulated.results == sim.simulate(compiled.levels, [equivalents], MANAGEMENT).results
    replayed = rp.replay(compiled, rp.Source(str(fixture)), rp.Filters(), management_account=MANAGEMENT)
    assert replayed.errors == [] and replayed.records == replayed.evaluated == len(rows)
    expected = rp.replay(compiled, rp.Source(str(equivalents)), rp.Filters(), management_account=MANAGEMENT)
    assert replayed.groups == expected.groups


def test_table_rows_are_filtered_by_account_region_and_time(compiled):
    fixture = TRAILS / "shapes" / "athena-rows.json"
    everything = rp.replay(compiled, rp.Source(str(fixture)), rp.Filters(regions=frozenset({"eu-west-1"})))
    assert everything.records == len(_records(fixture)) and everything.errors == []
    other = rp.replay(compiled, rp.Source(str(fixture)), rp.Filters(accounts=frozenset({"210987654321"})))
    assert other.records == 0 and other.errors == []


def test_normalise_leaves_a_cloudtrail_record_alone_and_is_idempotent():
    record = SEED[0]
    assert record_shapes.normalise(record) is record
    for fixture in SHAPES:
        for row in _records(fixture):
            once = record_shapes.normalise(row)
            assert record_shapes.normalise(once) is once


def test_a_table_field_that_is_not_json_is_an_error_for_that_record(tmp_path, compiled, capsys, scp):
    rows = _records(TRAILS / "shapes" / "athena-rows.json")
    broken = {**rows[0], "requestparameters": '{"dhcpOptionsId": "dopt-0a1b'}
    path = tmp_path / "rows.json"
    path.write_text(json.dumps({"Records": [broken, rows[3]]}))
    with pytest.raises(MalformedRecord, match="requestParameters"):
        record_shapes.normalise(broken)
    totals = rp.replay(compiled, rp.Source(str(path)), rp.Filters(), management_account=MANAGEMENT)
    (error,) = totals.errors
    assert error.file == str(path) and f"record 0 ({broken['eventid']})" in error.message
    assert "requestParameters" in error.message and "not JSON" in error.message
    assert sum(g["count"] for g in totals.groups.values()) == 1  # the other row is still counted
    outcome = sim.simulate(compiled.levels, [path], MANAGEMENT)
    assert [e.message for e in outcome.errors] == [error.message] and len(outcome.results) == 1


# --- 4. replay never crashes ----------------------------------------------------------------------


def _raise_for(event_id: str, original):
    def parse(record, *args, **kwargs):
        if record.get("eventID") == event_id:
            raise RuntimeError("injected fault")
        return original(record, *args, **kwargs)

    return parse


def test_an_exception_on_one_record_is_an_error_and_the_rest_is_counted(tmp_path, compiled, monkeypatch):
    victim = SEED[0]
    assert victim["netguard-expect"]["decision"] == "Deny"
    path = tmp_path / "trail.json"
    path.write_text(json.dumps({"Records": SEED}))
    before = rp.replay(compiled, rp.Source(str(path)), rp.Filters(), management_account=MANAGEMENT)
    monkeypatch.setattr(rp, "read_head", _raise_for(victim["eventID"], rp.read_head))
    after = rp.replay(compiled, rp.Source(str(path)), rp.Filters(), management_account=MANAGEMENT)
    (error,) = after.errors
    assert error.file == str(path) and f"record 0 ({victim['eventID']})" in error.message
    assert "RuntimeError" in error.message and "injected fault" in error.message
    assert (after.records, after.evaluated) == (before.records, before.evaluated)
    counted = sum(g["count"] for g in after.groups.values())
    assert counted == sum(g["count"] for g in before.groups.values()) - 1


def test_simulate_goes_on_past_an_exception_too(tmp_path, compiled, monkeypatch):
    victim = SEED[1]
    monkeypatch.setattr(sim, "parse_record", _raise_for(victim["eventID"], sim.parse_record))
    outcome = sim.simulate(compiled.levels, [TRAILS / "seed-events.json"], MANAGEMENT)
    (error,) = outcome.errors
    assert f"record 1 ({victim['eventID']})" in error.message and "RuntimeError: injected fault" in error.message
    assert len(outcome.results) == len(SEED) - 1


def test_the_cli_report_is_written_whatever_fails(tmp_path, scp, capsys, monkeypatch):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.json").write_text(json.dumps({"Records": SEED}))
    (logs / "b.json").write_text(json.dumps({"Records": SEED[:1]}))
    victim = SEED[5]
    monkeypatch.setattr(rp, "read_head", _raise_for(victim["eventID"], rp.read_head))
    reader = cloudtrail.decode_records

    def decode(raw, name, *args):
        if name.endswith("b.json"):
            raise MemoryError("injected")
        return reader(raw, name, *args)

    monkeypatch.setattr(cloudtrail, "decode_records", decode)
    code, out, err = _replay_cli(capsys, scp, logs, "json")
    assert code == 2 and "Traceback" not in err
    report = json.loads(out)
    messages = sorted((Path(e["file"]).name, e["message"]) for e in report["errors"])
    assert len(messages) == 2
    assert messages[0][0] == "a.json" and victim["eventID"] in messages[0][1] and "RuntimeError" in messages[0][1]
    assert messages[1][0] == "b.json" and "MemoryError: injected" in messages[1][1]
    expected = sum(1 for r in SEED if r["netguard-expect"]["decision"] == "Deny") - 1
    assert report["summary"]["would_be_denied"] == expected


def test_lake_get_query_results_output_is_read_as_its_rows(compiled, tmp_path):
    """CloudTrail Lake's GetQueryResults returns QueryResultRows, each row a list of one-column objects
    (CloudTrail API Reference, GetQueryResults); saved as a file, it replays like the rows themselves."""
    rows = [
        {k: v for k, v in r.items() if k != "netguard-expect"} for r in _records(TRAILS / "shapes" / "lake-rows.json")
    ]
    as_rows = tmp_path / "rows.json"
    as_rows.write_text(json.dumps({"Records": rows}))
    query_output = tmp_path / "get-query-results.json"
    query_output.write_text(
        json.dumps({"QueryStatus": "FINISHED", "QueryResultRows": [[{k: v} for k, v in r.items()] for r in rows]})
    )
    expected = rp.replay(compiled, rp.Source(str(as_rows)), rp.Filters(), management_account=MANAGEMENT)
    got = rp.replay(compiled, rp.Source(str(query_output)), rp.Filters(), management_account=MANAGEMENT)
    assert got.errors == [] and got.records == len(rows) and got.groups == expected.groups
    assert sim.simulate(compiled.levels, [query_output], MANAGEMENT).results == (
        sim.simulate(compiled.levels, [as_rows], MANAGEMENT).results
    )


def test_an_event_source_in_upper_case_names_the_same_service(compiled):
    record = {**SEED[0], "eventSource": "EC2.Amazonaws.com"}
    assert parse_record(record).request == parse_record(SEED[0]).request  # without normalise, too
    got = rp.evaluate_record(compiled, record, MANAGEMENT)
    assert got["action"] == "ec2:DeleteDhcpOptions"
    assert got == rp.evaluate_record(compiled, SEED[0], MANAGEMENT)
