"""`netguard policy` as a new user meets it: exit codes a pipeline can act on (--fail-on), a render
folder that holds only what the last render wrote, filters and arguments that say when they match
nothing, one name per idea across the commands, and suggestions for mistyped guardrail names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netguard.cli import main
from netguard.policy.render import MANIFEST, did_you_mean
from netguard.policy.simulate import load_policy_levels
from tests.conftest import ROOT

FIXTURES = ROOT / "fixtures"
TRAILS = FIXTURES / "cloudtrail"
ORG = FIXTURES / "org" / "org.yaml"
TAG_ORG = FIXTURES / "org" / "org-tag.yaml"


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def scp(tmp_path, capsys) -> Path:
    """The guardrails of fixtures/org/org.yaml, rendered as the README shows."""
    code, _, err = run(capsys, "policy", "render", "--config", str(ORG), "--output", str(tmp_path / "scp"))
    assert code == 0, err
    return tmp_path / "scp"


def _records(name: str) -> list[dict]:
    return json.loads((TRAILS / name).read_text())["Records"]


def _trail(folder: Path, name: str, records: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps({"Records": records}))
    return path


def _only_already_failing(tmp_path: Path) -> Path:
    """failed-calls.json without its Deny: calls the guardrails would deny that failed anyway, and an Allow."""
    kept = [r for r in _records("failed-calls.json") if r["netguard-expect"]["decision"] != "Deny"]
    assert {r["netguard-expect"]["decision"] for r in kept} == {"AlreadyFailing", "Allow"}
    return _trail(tmp_path / "failing", "failing.json", kept)


# --fail-on ---------------------------------------------------------------------------------------


def _simulate(capsys, policies: Path, events: Path, *extra: str, config: Path = ORG) -> tuple[int, str, str]:
    argv = ["--policies", str(policies), "--events", str(events), "--config", str(config)]
    return run(capsys, "policy", "simulate", *argv, *extra)


def _replay(policies: Path, events: Path, config: Path = ORG) -> list[str]:
    argv = ["--policies", str(policies), "--events", str(events), "--config", str(config), "--jobs", "1"]
    return ["policy", "replay", *argv]


def test_simulate_exits_0_with_denies_unless_told_to_fail(scp, capsys):
    seed = TRAILS / "seed-events.json"
    assert _simulate(capsys, scp, seed)[0] == 0  # existing pipelines keep passing
    code, _, err = _simulate(capsys, scp, seed, "--fail-on", "deny")
    assert code == 1
    assert "netguard: exit 1 (--fail-on): Deny: 17 records" in err
    assert _simulate(capsys, scp, seed, "--fail-on", "indeterminate")[0] == 0  # the seed has no Indeterminate


def test_fail_on_deny_ignores_calls_already_failing(scp, tmp_path, capsys):
    failing = _only_already_failing(tmp_path)
    code, out, _ = _simulate(capsys, scp, failing, "--fail-on", "deny,indeterminate", "--format", "json")
    assert code == 0
    assert "AlreadyFailing" in {r["decision"] for r in json.loads(out)["results"]}
    assert run(capsys, *_replay(scp, failing), "--fail-on", "deny", "--fail-on", "indeterminate")[0] == 0


def test_fail_on_indeterminate_in_simulate_and_replay(tmp_path, capsys):
    policies = tmp_path / "scp"
    assert run(capsys, "policy", "render", "--config", str(TAG_ORG), "--output", str(policies))[0] == 0
    trail = TRAILS / "tag-exemption.json"
    assert _simulate(capsys, policies, trail, "--fail-on", "deny", config=TAG_ORG)[0] == 0
    code, _, err = _simulate(capsys, policies, trail, "--fail-on", "indeterminate", config=TAG_ORG)
    assert code == 1 and "Indeterminate: 2 records" in err
    replay = _replay(policies, trail, TAG_ORG)
    assert run(capsys, *replay)[0] == 0
    assert run(capsys, *replay, "--fail-on", "deny")[0] == 0
    code, _, err = run(capsys, *replay, "--fail-on", "INDETERMINATE")
    assert code == 1 and "Indeterminate: 2 groups of 2 records" in err


def test_replay_fail_on_deny_counts_groups(scp, capsys):
    code, out, err = run(capsys, *_replay(scp, TRAILS / "seed-events.json"), "--fail-on", "deny", "--format", "csv")
    groups = [line for line in out.splitlines()[1:] if line.startswith("Deny,")]
    assert code == 1 and f"Deny: {len(groups)} groups of 17 records" in err


def test_errors_win_over_fail_on(scp, tmp_path, capsys):
    bad = _trail(tmp_path / "bad", "bad.json", [*_records("seed-events.json"), {"eventSource": 5}])
    assert _simulate(capsys, scp, bad, "--fail-on", "deny")[0] == 2
    assert run(capsys, *_replay(scp, bad), "--fail-on", "deny")[0] == 2


def test_fail_on_refuses_an_unknown_decision(scp, capsys):
    with pytest.raises(SystemExit) as exit_:
        _simulate(capsys, scp, TRAILS / "seed-events.json", "--fail-on", "deny,alreadyfailing")
    assert exit_.value.code == 2
    assert "--fail-on: not a decision: 'alreadyfailing' (choose from deny, indeterminate)" in capsys.readouterr().err


# help and option names ---------------------------------------------------------------------------


def test_policy_help_lists_every_command_on_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["policy", "--help"])
    assert exit_.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    for command in ("render", "validate", "simulate", "replay"):
        (line,) = [line for line in lines if line.strip().startswith(command + " ")]
        assert len(line) <= 80  # one line each, not wrapped
        index = lines.index(line)
        assert lines[index + 1].strip().split(" ")[0] in {"validate", "simulate", "replay", ""}
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "render, validate, simulate and replay" in capsys.readouterr().out


def test_render_writes_with_output_o_and_the_former_out(tmp_path, capsys):
    for flag in ("--output", "-o", "--out"):
        folder = tmp_path / flag.strip("-")
        code, out, err = run(capsys, "policy", "render", "--config", str(ORG), flag, str(folder))
        assert code == 0, err
        assert f"{folder / 'ng-deny-network-deletes.json'}: " in out
    with pytest.raises(SystemExit):
        main(["policy", "render", "--help"])
    shown = capsys.readouterr().out
    assert "--output DIR, -o DIR" in shown and "--out DIR" not in shown  # one name per idea in the help
    with pytest.raises(SystemExit) as exit_:
        main(["policy", "render", "--config", str(ORG)])
    assert exit_.value.code == 2 and "--output/-o is required" in capsys.readouterr().err


def test_replay_reads_events_and_the_former_source(scp, capsys):
    trail = str(TRAILS / "seed-events.json")
    reports = []
    for flag in ("--events", "--source"):
        code, out, err = run(
            capsys, "policy", "replay", "--policies", str(scp), flag, trail, "--config", str(ORG), "-j", "1"
        )
        assert code == 0, err
        reports.append(out)
    assert reports[0] == reports[1] and "17 would be denied" in reports[0]
    with pytest.raises(SystemExit):
        main(["policy", "replay", "--help"])
    shown = capsys.readouterr().out
    assert "--events PATH|s3://BUCKET/PREFIX" in shown and "--source PATH" not in shown
    with pytest.raises(SystemExit) as exit_:
        main(["policy", "replay", "--policies", str(scp)])
    assert exit_.value.code == 2 and "--events is required" in capsys.readouterr().err


# render owns its folder --------------------------------------------------------------------------

ALL = ["ng-deny-eip-management", "ng-deny-network-deletes", "ng-deny-topology-creation", "ng-protect-flow-logs"]


def _org(tmp_path: Path, guardrails: list[str], extra: str = "") -> Path:
    config = tmp_path / "org.yaml"
    config.write_text(ORG.read_text() + f"guardrails: [{', '.join(guardrails)}]\n" + extra)
    return config


def _render(capsys, config: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return run(capsys, "policy", "render", "--config", str(config), "-o", str(out), *extra)


def test_render_removes_what_it_wrote_last_time_and_no_longer_renders(tmp_path, capsys):
    out = tmp_path / "scp"
    assert _render(capsys, _org(tmp_path, ALL), out)[0] == 0
    assert sorted(p.name for p in out.glob("*.json") if p.name != MANIFEST) == [f"{g}.json" for g in ALL]
    code, stdout, err = _render(capsys, _org(tmp_path, ALL[1:]), out)  # ng-deny-eip-management dropped
    assert code == 0, err
    assert not (out / "ng-deny-eip-management.json").exists()
    assert f"{out / 'ng-deny-eip-management.json'}: removed, no longer rendered" in stdout
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["files"] == [f"{g}.json" for g in ALL[1:]]
    assert manifest["kind"] == "scp" and manifest["config"] == str(tmp_path / "org.yaml")
    assert len(manifest["config_sha256"]) == 64
    levels, errors = load_policy_levels(out)
    assert not errors and sorted(p.name for p in levels[0][1:]) == [f"{g}.json" for g in ALL[1:]]


def test_render_refuses_a_folder_holding_files_it_did_not_write(tmp_path, capsys):
    out = tmp_path / "scp"
    assert _render(capsys, ORG, out)[0] == 0
    (out / "hand-made.json").write_text('{"Version": "2012-10-17", "Statement": []}')
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, stdout, err = _render(capsys, _org(tmp_path, ALL[1:]), out)
    assert code == 2 and stdout == ""
    assert f"netguard: error: {out}: holds files the last render did not write" in err
    assert "hand-made.json" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing written, nothing removed


def test_render_writes_only_into_a_new_or_empty_folder_or_its_own(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _render(capsys, ORG, empty)[0] == 0
    assert _render(capsys, ORG, tmp_path / "new" / "deeper")[0] == 0
    levels = tmp_path / "levels"
    (levels / "ou-prod").mkdir(parents=True)  # a subfolder is another level, not render's: left alone
    (levels / "ou-prod" / "extra.json").write_text("{}")
    assert _render(capsys, ORG, levels)[0] == 0
    assert (levels / "ou-prod" / "extra.json").read_text() == "{}"
    used = tmp_path / "used"
    used.mkdir()
    for index in range(12):
        (used / f"old-{index:02}.json").write_text("{}")
    code, _, err = _render(capsys, ORG, used)
    assert code == 2
    assert f"holds files and no {MANIFEST}, so render did not write them: old-00.json" in err
    assert "old-09.json and 2 more" in err
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    code, _, err = _render(capsys, ORG, not_a_folder)
    assert code == 2 and f"{not_a_folder}: not a folder" in err


def test_render_replaces_a_symlink_among_its_files_without_following_it(tmp_path, capsys):
    out = tmp_path / "scp"
    assert _render(capsys, ORG, out)[0] == 0
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    (out / "ng-protect-flow-logs.json").unlink()
    (out / "ng-protect-flow-logs.json").symlink_to(target)
    assert _render(capsys, ORG, out)[0] == 0
    assert target.read_text() == "keep me"
    assert not (out / "ng-protect-flow-logs.json").is_symlink()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("files", [["../escape.json"], "not a list", [MANIFEST]])
def test_a_manifest_render_could_not_have_written_is_an_error(tmp_path, capsys, files):
    out = tmp_path / "scp"
    assert _render(capsys, ORG, out)[0] == 0
    manifest = json.loads((out / MANIFEST).read_text())
    (out / MANIFEST).write_text(json.dumps({**manifest, "files": files}))
    code, _, err = _render(capsys, ORG, out)
    assert code == 2 and f"netguard: error: {out / MANIFEST}: not a render manifest" in err
    code, _, err = _simulate(capsys, out, TRAILS / "seed-events.json")
    assert code == 2 and f"{out / MANIFEST}: not a render manifest" in err


def test_simulate_and_replay_refuse_a_rendered_folder_with_stale_or_missing_files(tmp_path, capsys):
    out = tmp_path / "scp"
    assert _render(capsys, ORG, out)[0] == 0
    trail = TRAILS / "seed-events.json"
    (out / "ng-old-guardrail.json").write_text((out / "ng-deny-network-deletes.json").read_text())
    for argv in (
        ["policy", "simulate", "--policies", str(out), "--events", str(trail)],
        _replay(out, trail),
    ):
        code, stdout, err = run(capsys, *argv)
        assert code == 2 and "would be denied" not in stdout
        assert f"{out / 'ng-old-guardrail.json'}: not written by the last render" in err
    (out / "ng-old-guardrail.json").unlink()
    (out / "ng-protect-flow-logs.json").unlink()
    code, _, err = _simulate(capsys, out, trail)
    assert code == 2 and f"{out / 'ng-protect-flow-logs.json'}: listed in {MANIFEST} but missing" in err
    hand_made = tmp_path / "hand"  # a folder render did not write is read as it is
    hand_made.mkdir()
    (hand_made / "mine.json").write_text((out / "ng-deny-network-deletes.json").read_text())
    assert _simulate(capsys, hand_made, trail)[0] == 0


def test_validate_reads_a_rendered_folder_without_its_manifest(scp, capsys):
    code, out, _ = run(capsys, "policy", "validate", str(scp), "--config", str(ORG))
    assert code == 0 and MANIFEST not in out
    assert "netguard: 4 policies checked, 0 with problems" in out


# filters and arguments that match nothing --------------------------------------------------------

DAY = "AWSLogs/123456789012/CloudTrail/eu-west-1/2026/11/02"


def _logs(tmp_path: Path) -> Path:
    """Seed records in the CloudTrail layout, in account 123456789012 and eu-west-1, on 2026-11-02."""
    records = [
        {**r, "recipientAccountId": "123456789012", "awsRegion": "eu-west-1", "eventTime": "2026-11-02T10:00:00Z"}
        for r in _records("seed-events.json")
    ]
    _trail(tmp_path / "logs" / DAY, "part-1.json", records)
    return tmp_path / "logs"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--since", "2026-11-01", "--until", "2026-08-01"], "--since: 2026-11-01T00:00:00 is after --until"),
        (["--accounts", "12345"], "argument --accounts: not a 12-digit account id: '12345'"),
        (["--accounts", "123456789012,eu-west-1"], "argument --accounts: not a 12-digit account id: 'eu-west-1'"),
        (["--regions", "eu-west"], "argument --regions: not a region name such as eu-west-1: 'eu-west'"),
        (["--regions", "123456789012"], "argument --regions: not a region name"),
        (["--jobs", "0"], "argument --jobs/-j: must be at least 1: 0"),
        (["--jobs", "-3"], "argument --jobs/-j: must be at least 1: -3"),
        (["-j", "two"], "argument --jobs/-j: not a whole number: 'two'"),
        (["--since", "yesterday"], "argument --since: not a date: 'yesterday'"),
    ],
)
def test_replay_refuses_arguments_that_cannot_match(scp, tmp_path, capsys, argv, message):
    try:
        code = main([*_replay(scp, _logs(tmp_path)), *argv])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_replay_takes_filter_values_spaced_or_comma_separated(scp, tmp_path, capsys):
    logs = _logs(tmp_path)
    spaced = run(capsys, *_replay(scp, logs), "--accounts", "123456789012", "210987654321", "--format", "json")
    commas = run(capsys, *_replay(scp, logs), "--accounts", "123456789012,210987654321", "--format", "json")
    assert spaced[0] == commas[0] == 0
    assert json.loads(spaced[1])["summary"] == json.loads(commas[1])["summary"]
    assert json.loads(spaced[1])["summary"]["would_be_denied"] == 17


def test_a_filter_value_that_matched_nothing_is_a_warning(scp, tmp_path, capsys):
    logs = _logs(tmp_path)
    argv = [*_replay(scp, logs), "--accounts", "123456789012", "111122223333", "--regions", "eu-west-1", "us-east-2"]
    code, out, err = run(capsys, *argv, "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert report["warnings"] == [
        "--accounts 111122223333 matched no record: no log file or record of this account was read",
        "--regions us-east-2 matched no record: no log file or record of this region was read",
    ]
    assert report["summary"]["would_be_denied"] == 17
    assert "netguard: warning: --accounts 111122223333 matched no record" in err
    assert "netguard: warning: --regions us-east-2 matched no record" in err
    code, out, err = run(capsys, *argv)  # text: in the report and on stderr
    assert "warning: --accounts 111122223333 matched no record" in out
    assert "netguard: warning: --accounts 111122223333" in err


def test_records_read_but_none_in_scope_is_said_explicitly(scp, tmp_path, capsys):
    flat = _trail(tmp_path / "flat", "trail.json", _records("seed-events.json"))  # no AWSLogs/ layout
    code, out, err = run(capsys, *_replay(scp, flat), "--accounts", "111122223333", "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert report["summary"]["records"] == 0 and report["summary"]["would_be_denied"] == 0
    assert report["warnings"] == [
        "--accounts 111122223333 matched no record: no log file or record of this account was read",
        "0 records in scope: every record is outside --accounts 111122223333 (1 file read)",
    ]
    assert "netguard: warning: 0 records in scope" in err
    code, out, err = run(capsys, *_replay(scp, flat), "--since", "2030-01-01")
    assert code == 0 and "warning: 0 records in scope" in out and "--since 2030-01-01T00:00:00" in out


def test_files_skipped_by_their_path_are_counted_when_nothing_is_in_scope(scp, tmp_path, capsys):
    logs = _logs(tmp_path)
    code, out, _ = run(capsys, *_replay(scp, logs), "--since", "2026-12-01", "--format", "json", "-j", "2")
    report = json.loads(out)
    assert code == 0 and report["summary"]["files"] == 0
    assert report["warnings"] == [
        "0 records in scope: every record is outside --since 2026-12-01T00:00:00 (1 file skipped by its AWSLogs/ path)"
    ]


def test_filters_are_marked_from_worker_processes(scp, tmp_path, capsys):
    flat = tmp_path / "flat"
    for index in range(4):
        _trail(flat, f"trail-{index}.json", _records("seed-events.json"))
    argv = [*_replay(scp, flat)[:-2], "--jobs", "2", "--accounts", "123456789012,111122223333", "--format", "json"]
    code, out, _ = run(capsys, *argv)
    account = {r["recipientAccountId"] for r in _records("seed-events.json")}
    assert code == 0 and "123456789012" in account and "111122223333" not in account
    assert json.loads(out)["warnings"] == [
        "--accounts 111122223333 matched no record: no log file or record of this account was read"
    ]


def test_replay_of_a_folder_without_log_files_says_so(scp, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run(capsys, *_replay(scp, empty), "--format", "json")
    assert code == 0
    assert json.loads(out)["warnings"] == [f"no CloudTrail log files (*.json, *.json.gz, *.gz) in --events {empty}"]
    code, _, err = run(capsys, *_replay(scp, tmp_path / "missing"))
    assert code == 2 and f"netguard: error: {tmp_path / 'missing'}: no such file or directory (--events)" in err


def test_an_offset_in_since_is_converted_to_utc(scp, tmp_path, capsys):
    logs = _logs(tmp_path)  # every record at 2026-11-02T10:00:00Z
    code, out, _ = run(capsys, *_replay(scp, logs), "--since", "2026-11-02T11:30:00+02:00", "--format", "json")
    assert code == 0 and json.loads(out)["summary"]["would_be_denied"] == 17  # 09:30 UTC
    code, out, _ = run(capsys, *_replay(scp, logs), "--since", "2026-11-02T10:30:00Z", "--format", "json")
    assert code == 0 and json.loads(out)["summary"]["would_be_denied"] == 0


def test_validate_refuses_paths_that_name_no_policy(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("")
    code, out, err = run(capsys, "policy", "validate", str(tmp_path / "nodir"), str(empty))
    assert code == 2 and "policies checked" not in out
    assert f"netguard: error: {tmp_path / 'nodir'}: no such file or directory" in err
    assert f"netguard: error: {empty}: no policy files (*.json) in this folder" in err
    with pytest.raises(SystemExit) as exit_:
        main(["policy", "validate", str(empty), "--size-limit", "0"])
    assert exit_.value.code == 2


def test_validate_skips_a_render_manifest_named_by_a_hook(scp, capsys):
    code, out, _ = run(capsys, "policy", "validate", str(scp / MANIFEST), str(scp / "ng-protect-flow-logs.json"))
    assert code == 0 and "netguard: 1 policies checked, 0 with problems" in out


# did you mean ------------------------------------------------------------------------------------


def test_a_mistyped_guardrail_in_org_yaml_gets_a_suggestion(tmp_path, capsys):
    config = _org(tmp_path, ["ng-deny-network-deletes", "ng-deny-eip-managment", "ng-protect-flowlogs", "ng-zzz"])
    code, out, err = _render(capsys, config, tmp_path / "scp")
    assert code == 2 and out == "" and not (tmp_path / "scp").exists()
    assert f"netguard: error: {config}: unknown guardrails: " in err
    assert "ng-deny-eip-managment (did you mean ng-deny-eip-management?)" in err
    assert "ng-protect-flowlogs (did you mean ng-protect-flow-logs?)" in err
    assert "ng-zzz, " in err or "ng-zzz (available" in err  # nothing close: no suggestion


def test_a_mistyped_guardrail_in_a_target_is_caught_at_render(tmp_path, capsys):
    targets = (
        "targets:\n"
        "  - target: /Sandbox\n"
        "    guardrails: [ng-deny-network-delete]\n"
        "  - target: root\n"
        "    guardrails: [ng-protect-flow-logs]\n"
    )
    config = _org(tmp_path, ALL[:3], targets)
    code, _, err = _render(capsys, config, tmp_path / "scp")
    assert code == 2
    assert "target /Sandbox: unknown guardrail ng-deny-network-delete (did you mean ng-deny-network-deletes?)" in err
    assert "target root: guardrail ng-protect-flow-logs is not rendered (add it to guardrails)" in err
    assert _render(capsys, _org(tmp_path, ALL, targets.replace("delete]", "deletes]")), tmp_path / "scp")[0] == 0


def test_did_you_mean_suggests_the_closest_name_or_nothing():
    assert did_you_mean("ng-deny-eip-managment", ALL) == " (did you mean ng-deny-eip-management?)"
    assert did_you_mean("NG-DENY-EIP-MANAGEMENT", ALL) == " (did you mean ng-deny-eip-management?)"
    assert did_you_mean("something-else", ALL) == ""
    assert did_you_mean("x", []) == ""


def test_simulate_of_a_folder_without_log_files_says_so(scp, tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "notes").mkdir(parents=True)
    (empty / "notes" / "readme.txt").write_text("")
    code, out, err = _simulate(capsys, scp, empty, "--format", "json")
    assert code == 0
    assert json.loads(out)["warnings"] == [f"no CloudTrail log files (*.json, *.json.gz, *.gz) in --events {empty}"]
    assert f"netguard: warning: no CloudTrail log files (*.json, *.json.gz, *.gz) in --events {empty}" in err
    code, out, _ = _simulate(capsys, scp, TRAILS / "seed-events.json", "--format", "json")
    assert json.loads(out)["warnings"] == []
