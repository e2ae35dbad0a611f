"""`netguard policy` as a new user meets it: exit codes a pipeline can act on (--fail-on), a render
folder that holds only what the last render wrote, filters and arguments that say when they match
nothing, one name per idea across the commands, and suggestions for mistyped guardrail names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netguard.cli import main
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
