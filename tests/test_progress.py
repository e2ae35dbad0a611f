"""Progress on a terminal for long replays: shown on a TTY's stderr, silent for a pipe or under CI."""

from __future__ import annotations

import io
import json
import shutil

import pytest

from netguard import progress
from netguard.cli import main
from netguard.policy.orgconfig import load_org_config
from netguard.policy.render import render_to_dir
from tests.conftest import FIXTURES


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def no_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)


def test_a_tty_gets_files_records_rate_and_eta_after_the_delay():
    stream, clock = FakeTTY(), Clock()
    bar = progress.Progress(10, stream=stream, clock=clock)
    bar.update(1, 500)
    assert stream.getvalue() == ""  # a quick run prints nothing
    clock.now += 4
    bar.update(2, 2000)
    assert stream.getvalue() == "\rnetguard: 2/10 files, 2,000 records, 500 records/s, ETA 16s"
    clock.now += 0.1
    bar.update(3, 2100)
    assert stream.getvalue().count("\r") == 1  # redrawn at most every INTERVAL seconds
    clock.now += 116
    bar.update(10, 9000)
    last = stream.getvalue().rsplit("\r", 1)[1]
    assert last.startswith("netguard: 10/10 files, 9,000 records, 75 records/s, ETA 0s")
    bar.close()
    assert stream.getvalue().endswith("\n")


def test_without_a_total_there_is_no_eta_and_a_shorter_line_covers_the_longer():
    stream, clock = FakeTTY(), Clock()
    bar = progress.Progress(stream=stream, clock=clock, delay=0, interval=0)
    clock.now += 1
    bar.update(12, 123456)
    clock.now += 1
    bar.update(13, 10)
    first, second = stream.getvalue().split("\r")[1:]
    assert "ETA" not in first and first.startswith("netguard: 12 files, 123,456 records")
    assert len(second) == len(first) and second.rstrip() == "netguard: 13 files, 10 records, 5 records/s"


@pytest.mark.parametrize(("ci", "shown"), [(None, True), ("true", False), ("1", False), ("false", True)])
def test_silent_for_a_pipe_and_under_ci(monkeypatch, ci, shown):
    if ci is not None:
        monkeypatch.setenv("CI", ci)
    for stream, tty in ((FakeTTY(), True), (io.StringIO(), False)):
        clock = Clock()
        bar = progress.Progress(3, stream=stream, clock=clock)
        clock.now += 10
        bar.update(1, 10)
        bar.close()
        assert bool(stream.getvalue()) is (tty and shown), (ci, tty)


def test_durations():
    assert [progress.duration(s) for s in (0, 44.6, 61, 3599, 3600 * 2 + 7 * 60 + 30)] == [
        "0s",
        "45s",
        "1m01s",
        "59m59s",
        "2h07m",
    ]


def test_a_stream_that_breaks_turns_progress_off():
    class Broken(FakeTTY):
        def write(self, text: str) -> int:
            raise OSError("gone")

    bar = progress.Progress(2, stream=Broken(), delay=0, interval=0)
    bar.update(1, 1)
    assert bar.enabled is False
    bar.close()


@pytest.fixture
def replay_args(tmp_path):
    render_to_dir(load_org_config(FIXTURES / "org" / "org.yaml"), tmp_path / "scp")
    logs = tmp_path / "logs"
    logs.mkdir()
    for path in sorted((FIXTURES / "cloudtrail").glob("*.json")):
        shutil.copy(path, logs / path.name)
    return ["policy", "replay", "--policies", str(tmp_path / "scp"), "--events", str(logs), "-j", "1"]


@pytest.mark.parametrize("stderr", [FakeTTY, io.StringIO])
def test_replay_shows_progress_on_a_tty_stderr_only(monkeypatch, capsys, replay_args, stderr):
    monkeypatch.setattr(progress.Progress, "DELAY", 0)
    monkeypatch.setattr(progress.Progress, "INTERVAL", 0)
    stream = stderr()
    monkeypatch.setattr("sys.stderr", stream)
    assert main([*replay_args, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)  # stdout holds the report alone
    lines = [line for line in stream.getvalue().split("\r") if line.strip()]
    if stderr is FakeTTY:
        assert lines[-1].startswith("netguard: 4/4 files, ") and "records/s" in lines[-1]
        assert f"{report['summary']['records']} records" in lines[-1]
        assert stream.getvalue().endswith("\n")
    else:
        assert lines == []
