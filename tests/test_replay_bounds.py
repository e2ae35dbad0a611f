"""Hostile CloudTrail and policy input (issue #13, round two): each is an error naming the file or
record and the limit, never a crash, and the rest of the report is still written. The hostile inputs
are generated here, small enough to run fast, with a low limit set to prove each cap."""

from __future__ import annotations

import copy
import gzip
import json
import tracemalloc
from pathlib import Path

import pytest

from netguard.cli import main
from netguard.iam.evaluator import FULL_AWS_ACCESS, Policy
from netguard.policy import cloudtrail
from netguard.policy import replay as rp
from netguard.policy.cloudtrail import Limits, RecordError, decode_records
from netguard.policy.orgconfig import load_org_config
from netguard.policy.render import render_to_dir
from netguard.policy.simulate import load_policy_levels, simulate
from netguard.policy.validate import validate_document, validate_file
from tests.conftest import FIXTURES

ORG = FIXTURES / "org" / "org.yaml"
SEED = json.loads((FIXTURES / "cloudtrail" / "seed-events.json").read_text())["Records"]
DENIED = next(r for r in SEED if r["netguard-expect"]["decision"] == "Deny" and "Developer" in json.dumps(r))
MiB = 1024 * 1024


@pytest.fixture
def scp(tmp_path) -> Path:
    render_to_dir(load_org_config(ORG), tmp_path / "scp")
    return tmp_path / "scp"


@pytest.fixture
def compiled(scp):
    levels, _ = load_policy_levels(scp)
    return rp.compile_policies(levels)


def _bomb(inflated: int) -> bytes:
    """A valid CloudTrail gzip file that inflates to about `inflated` bytes (whitespace compresses ~1000:1)."""
    return gzip.compress(b'{"Records": [' + b" " * inflated + b"]}", 9)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- decompression ---------------------------------------------------------------------------------


def test_a_gzip_bomb_is_refused_without_inflating_it_whole():
    bomb = _bomb(64 * MiB)
    assert len(bomb) < 100_000
    tracemalloc.start()
    try:
        found = decode_records(bomb, "bomb.json.gz", Limits(max_file_bytes=2 * MiB))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(found, RecordError) and found.file == "bomb.json.gz"
    assert "inflates past 2.0 MiB" in found.message and "--max-file-bytes" in found.message
    assert peak < 8 * MiB, f"decompression was not bounded: peak {peak} bytes"


def test_a_file_inflating_to_just_under_the_limit_reads():
    records = json.dumps({"Records": SEED[:3]}).encode()
    padded = records[:-2] + b" " * (MiB - len(records)) + records[-2:]
    assert len(padded) == MiB
    assert len(decode_records(gzip.compress(padded), "ok.json.gz", Limits(max_file_bytes=MiB))) == 3
    found = decode_records(gzip.compress(padded + b" "), "over.json.gz", Limits(max_file_bytes=MiB))
    assert isinstance(found, RecordError) and "inflates past" in found.message


def test_gzip_members_padding_and_trailing_garbage():
    log = json.dumps({"Records": SEED[:2]}).encode()
    two_members = gzip.compress(log[:20]) + gzip.compress(log[20:]) + b"\x00" * 8
    assert len(decode_records(two_members, "members.gz")) == 2
    garbage = decode_records(gzip.compress(log) + b"garbage", "tail.gz")
    assert isinstance(garbage, RecordError) and "data after the end of the gzip stream" in garbage.message
    bad = decode_records(b"\x1f\x8b" + b"\x00" * 40, "bad.gz")
    assert isinstance(bad, RecordError) and bad.message.startswith("corrupt gzip")


def test_plain_files_over_the_limit_are_not_read(tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(b'{"Records": [' + b" " * (2 * MiB) + b"]}")
    (error,) = list(cloudtrail.read_records(big, Limits(max_file_bytes=MiB)))
    assert isinstance(error, RecordError) and "over the limit of 1.0 MiB" in error.message
    assert "--max-file-bytes" in error.message


def test_a_fifo_among_the_logs_is_an_error_not_a_hang(tmp_path, compiled):
    import os

    os.mkfifo(tmp_path / "pipe.json")
    (error,) = list(cloudtrail.read_records(tmp_path / "pipe.json"))
    assert isinstance(error, RecordError) and "not a regular file" in error.message


def test_replay_and_simulate_report_the_bomb_and_go_on(tmp_path, scp, capsys):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "bomb.json.gz").write_bytes(_bomb(8 * MiB))
    (logs / "good.json").write_text(json.dumps({"Records": [DENIED]}))
    for command in (
        ["policy", "replay", "--policies", str(scp), "--source", str(logs), "--jobs", "1"],
        ["policy", "simulate", "--policies", str(scp), "--events", str(logs)],
    ):
        code, out, err = _run(capsys, *command, "--max-file-bytes", str(MiB))
        assert code == 2 and "Traceback" not in err, command
        assert f"error: {logs / 'bomb.json.gz'}: inflates past 1.0 MiB" in out
        assert DENIED["eventID"] in out  # the good file was still evaluated and reported


# --- records and values per file -------------------------------------------------------------------


def test_two_million_empty_records_are_one_error_for_the_file():
    raw = gzip.compress(b'{"Records": [' + b"{}," * 2_000_000 + b"{}]}", 9)
    assert len(raw) < 20_000
    found = decode_records(raw, "empty.json.gz")  # the default limits
    assert isinstance(found, RecordError)
    assert "2000001 records, over the limit of 500000 per file (--max-records)" in found.message


def test_records_over_a_low_limit(tmp_path, compiled):
    path = tmp_path / "many.json"
    path.write_text(json.dumps({"Records": [DENIED] * 50}))
    source = rp.Source(str(path), limits=Limits(max_records=49))
    totals = rp.replay(compiled, source, rp.Filters())
    assert [e.message for e in totals.errors] == [
        "50 records, over the limit of 49 per file (--max-records); none evaluated"
    ]
    assert rp.replay(compiled, rp.Source(str(path), limits=Limits(max_records=50)), rp.Filters()).errors == []


def test_record_errors_per_file_are_capped_and_counted(tmp_path, compiled):
    path = tmp_path / "empties.json"
    path.write_text(json.dumps({"Records": [{}] * 1000 + [DENIED]}))
    totals = rp.replay(compiled, rp.Source(str(path), limits=Limits(max_record_errors=10)), rp.Filters())
    assert len(totals.errors) == 11
    assert totals.errors[-1].message == "990 more record errors not listed (at most 10 per file, --max-record-errors)"
    assert sum(g["count"] for g in totals.groups.values()) == 1  # the good record is still counted
    outcome = simulate([[Policy("FullAWSAccess", FULL_AWS_ACCESS)]], [path], limits=Limits(max_record_errors=10))
    assert [e.message for e in outcome.errors] == [e.message for e in totals.errors]
    assert len(outcome.results) == 1


def test_json_values_are_counted_before_parsing(monkeypatch):
    def never(_raw):
        raise AssertionError("parsed a file over the value limit")

    raw = b'{"Records": [' + b"[]," * 3000 + b"[]]}"
    monkeypatch.setattr(cloudtrail, "loads", never)
    found = decode_records(raw, "values.json", Limits(max_json_values=1000))
    assert isinstance(found, RecordError) and "over the limit of 1000 per file (--max-json-values)" in found.message
    monkeypatch.undo()
    assert isinstance(decode_records(raw, "values.json", Limits(max_json_values=7000)), list)  # an upper bound


# --- records of every shape -----------------------------------------------------------------------


def _hostile_records() -> dict[str, tuple[dict, str]]:
    """name -> (record, words of its error)."""

    def variant(**changes) -> dict:
        record = copy.deepcopy(DENIED)
        for path, value in changes.items():
            target = record
            *parents, last = path.split("__")
            for parent in parents:
                target = target[parent]
            target[last] = value
        return record

    return {
        "deep": (variant(requestParameters="DEEP"), "nested more than 32 levels deep (--max-depth)"),
        "account-list": (variant(recipientAccountId=["1", "2"]), "recipientAccountId: a list, expected a string"),
        "region-object": (variant(awsRegion={"a": 1}), "awsRegion: an object, expected a string"),
        "time-number": (variant(eventTime=5), "eventTime: a number, expected a string"),
        "ip-list": (variant(sourceIPAddress=[1]), "sourceIPAddress: a list"),
        "identity-list": (variant(userIdentity=[]), "userIdentity: a list, expected an object"),
        "type-number": (variant(userIdentity__type=3), "userIdentity.type: a number"),
        "arn-list": (variant(userIdentity__arn=["x"]), "userIdentity.arn: a list"),
        "issuer-string": (
            variant(userIdentity__sessionContext__sessionIssuer="x"),
            "userIdentity.sessionContext.sessionIssuer: a string, expected an object",
        ),
        "mfa-list": (
            variant(userIdentity__sessionContext__attributes__mfaAuthenticated=[[]]),
            "mfaAuthenticated: a list",
        ),
        "params-list": (variant(requestParameters=[1]), "requestParameters: a list, expected an object"),
        "tag-key-number": (
            variant(requestParameters={"tagSpecificationSet": {"items": [{"tags": [{"key": 10**50}]}]}}),
            "requestParameters tag: key and value must be strings",
        ),
        "name-missing": (variant(eventName=None), "missing or malformed field eventName: missing"),
    }


@pytest.mark.parametrize("name", sorted(_hostile_records()))
def test_each_hostile_record_is_an_error_for_that_record(tmp_path, compiled, name):
    record, words = _hostile_records()[name]
    path = tmp_path / f"{name}.json"
    text = json.dumps({"Records": [record, DENIED]})
    if name == "deep":  # written as text: json.dumps itself would recurse 990 levels
        text = text.replace('"DEEP"', '{"a": ' * 990 + "{}" + "}" * 990)
    path.write_text(text)
    for filters in (rp.Filters(), rp.Filters(accounts=frozenset({"123456789012"}), regions=frozenset({"eu-west-1"}))):
        totals = rp.replay(compiled, rp.Source(str(path)), filters, management_account="999999999999")
        if (name == "account-list" and filters.accounts) or (name == "region-object" and filters.regions):
            assert totals.errors == []  # a field of the wrong type matches no filter: not in scope
        else:
            assert len(totals.errors) == 1, totals.errors
            (error,) = totals.errors
            assert error.file == str(path) and error.message.startswith(f"record 0 ({DENIED['eventID']})"), error
            assert words in error.message, error.message
        assert sum(g["count"] for g in totals.groups.values()) == 1  # the good record still counts
    outcome = simulate(compiled.levels, [path], "999999999999")
    assert len(outcome.results) == 1 and len(outcome.errors) == 1 and words in outcome.errors[0].message


def test_record_errors_do_not_echo_a_huge_or_structured_event_id(tmp_path, compiled):
    record = copy.deepcopy(DENIED)
    del record["userIdentity"]
    big = json.dumps({"Records": [{**record, "eventID": "BIG"}]}).replace('"BIG"', "7" * 4000)
    path = tmp_path / "ids.json"
    path.write_text(big)
    totals = rp.replay(compiled, rp.Source(str(path)), rp.Filters())
    assert [e.message for e in totals.errors] == ["record 0 (?): missing or malformed field userIdentity: missing"]


def test_a_five_thousand_digit_integer_is_an_error_for_that_input(tmp_path, scp, capsys):
    number = "9" * 5000
    trail = tmp_path / "trail.json"
    trail.write_text('{"Records": [{"eventID": "x", "n": ' + number + "}]}")
    found = decode_records(trail.read_bytes(), str(trail))
    assert isinstance(found, RecordError) and found.message == "an integer of 5000 digits, over the limit of 4300"
    policy = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ec2:*","Resource":"*",'
        '"Condition":{"NumericLessThan":{"aws:x":' + number + "}}}]}"
    )
    bad = tmp_path / "bad-scp"
    bad.mkdir()
    (bad / "big.json").write_text(policy)
    assert validate_document(policy) == ["an integer of 5000 digits, over the limit of 4300"]
    code, out, err = _run(capsys, "policy", "validate", str(bad / "big.json"))
    assert code == 2 and "an integer of 5000 digits" in out and "Traceback" not in err + out
    code, out, err = _run(capsys, "policy", "simulate", "--policies", str(bad), "--events", str(trail))
    assert code == 2 and "internal error" not in err and out == ""  # a policy that cannot load: nothing evaluated
    assert "big.json: cannot load policy: an integer of 5000 digits" in err and "no record evaluated" in err
    code, out, err = _run(capsys, "policy", "simulate", "--policies", str(scp), "--events", str(trail))
    assert code == 2 and "internal error" not in err and "trail.json: an integer of 5000 digits" in out
    code, out, err = _run(capsys, "policy", "replay", "--policies", str(bad), "--source", str(trail))
    assert code == 2 and "internal error" not in err and "big.json: cannot load policy: an integer" in err
    good = tmp_path / "ok.json"
    good.write_text('{"Records": [], "n": ' + "9" * 4000 + "}")  # long but within the limit: reads
    assert decode_records(good.read_bytes(), "ok.json") == []


def test_deep_and_huge_policies_are_errors(tmp_path):
    deep = '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ec2:*","Resource":"*",' + (
        '"Condition":{"StringEquals":{"aws:x":' + "[" * 990 + '"a"' + "]" * 990 + "}}}]}"
    )
    deeper = '{"Statement":' + "[" * 5000 + "]" * 5000 + "}"
    assert validate_document(deep) == ["JSON nested more than 32 levels deep"]
    assert validate_document(deeper) == ["JSON nested too deeply to parse"]
    folder = tmp_path / "scp"
    folder.mkdir()
    (folder / "deep.json").write_text(deep)
    (folder / "huge.json").write_bytes(b" " * (2 * MiB) + b"{}")
    _, errors = load_policy_levels(folder)
    assert sorted((Path(e.file).name, e.message) for e in errors) == [
        ("deep.json", "cannot load policy: JSON nested more than 32 levels deep"),
        (
            "huge.json",
            "cannot load policy: file is 2.0 MiB, over the limit of 1.0 MiB (policy files are at most 1 MiB)",
        ),
    ]
    assert validate_file(folder / "huge.json")[0].startswith("file is 2.0 MiB")


# --- implicit deny ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json", "csv"])
def test_replay_without_full_aws_access_reports_implicit_denies(tmp_path, scp, capsys, fmt):
    code, out, err = _run(
        capsys,
        "policy",
        "replay",
        "--policies",
        str(scp),
        "--source",
        str(FIXTURES / "cloudtrail" / "seed-events.json"),
        "--no-full-aws-access",
        "--format",
        fmt,
        "--jobs",
        "1",
    )
    assert code == 0 and err == "", err
    levels, _ = load_policy_levels(scp, full_aws_access=False)
    simulated = simulate(levels, [FIXTURES / "cloudtrail" / "seed-events.json"])
    implicit = [r for r in simulated.results if r["decision"] == "Deny" and not r["denied_by"]]
    assert implicit, "the fixture must hold calls no SCP allows"
    reason = "implicit deny: no SCP at level 0 allows ec2:DescribeVpcs"
    if fmt == "json":
        groups = json.loads(out)["groups"]
        denies = [g for g in groups if g["decision"] == "Deny"]
        assert sum(g["count"] for g in denies) == sum(1 for r in simulated.results if r["decision"] == "Deny")
        assert any(g["policy"] is None and g["reason"] == reason for g in denies)
    elif fmt == "csv":
        assert out.splitlines()[0].endswith(",reason") and reason in out
    else:
        assert f"({reason})" in out


# --- output ----------------------------------------------------------------------------------------


def test_control_characters_in_records_are_escaped_in_every_format(tmp_path, scp, capsys):
    record = copy.deepcopy(DENIED)
    record["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = "arn:aws:iam::123456789012:role/\x1b[31mX\n"
    record["eventID"] = "id\x1b]8;;http://x\x07"
    path = tmp_path / "ctl\x1b.json"
    path.write_text(json.dumps({"Records": [record, {"eventID": "e\rvil"}]}))
    for fmt in ("text", "csv", "json"):
        code, out, err = _run(
            capsys, "policy", "replay", "--policies", str(scp), "--source", str(path), "--format", fmt
        )
        assert code == 2
        if fmt == "csv":
            assert "e\\rvil" in err  # errors of a CSV report go to stderr
            out = out.replace("\r\n", "\n")  # CSV's own line ends
        assert not any(c in out + err for c in "\x1b\x07\r"), (fmt, out)
        assert "\\x1b[31mX" in out or "\\u001b[31mX" in out, (fmt, out)
    code, out, err = _run(capsys, "policy", "simulate", "--policies", str(scp), "--events", str(path))
    assert code == 2 and not any(c in out + err for c in "\x1b\x07\r")


def test_limits_are_options_with_their_defaults_in_the_help(capsys):
    for command in ("replay", "simulate"):
        with pytest.raises(SystemExit):
            main(["policy", command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--max-file-bytes N bytes per CloudTrail file, as stored and once inflated (default 268435456" in text
        assert "--max-records N records per CloudTrail file (default 500000)" in text
        assert "(default 20000000)" in text and "(default 32)" in text and "(default 100)" in text
    with pytest.raises(SystemExit):
        main(["policy", "replay", "--policies", "x", "--source", "y", "--max-records", "0"])
    assert "must be at least 1" in capsys.readouterr().err
