"""The benchmark corpus doubles as an end-to-end check: netguard finds exactly what was planted,
serially and with worker processes (timings live in bench/, not here)."""

from __future__ import annotations

import sys

import pytest

from netguard.config import DEFAULT_CONFIG
from netguard.scan.run import scan
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from corpus import generate


@pytest.mark.parametrize("jobs", [1, 2])
def test_scan_finds_exactly_the_planted_violations(tmp_path, monkeypatch, jobs):
    monkeypatch.setattr("netguard.scan.run.PARALLEL_THRESHOLD", 10)
    corpus = generate(tmp_path, cfn_files=30, tf_files=50, violation_share=0.5)
    assert len(corpus["planted"]) >= 10
    result = scan([str(tmp_path)], DEFAULT_CONFIG, jobs=jobs)
    assert result.errors == []
    assert {(f.file, f.control, f.resource) for f in result.findings} == set(corpus["planted"])
    assert len(result.files) == corpus["cloudformation"] + corpus["terraform"]


def test_a_worker_that_dies_is_an_error_for_its_files_not_a_hang(tmp_path, monkeypatch):
    """A worker killed mid-run (OOM killer, SIGKILL) must not hang the run nor pass its files."""
    import os
    import signal

    from netguard.scan import run

    monkeypatch.setattr(run, "PARALLEL_THRESHOLD", 2)
    generate(tmp_path, cfn_files=8, tf_files=0, violation_share=0.5)
    victim = sorted((tmp_path / "cloudformation").iterdir())[3]
    original = run.run_unit

    def die_on_victim(unit, config, debug=False):
        if unit.files[0] == str(victim):
            os.kill(os.getpid(), signal.SIGKILL)
        return original(unit, config, debug)

    monkeypatch.setattr(run, "run_unit", die_on_victim)
    result = scan([str(tmp_path)], DEFAULT_CONFIG, jobs=2)
    errored = {e.file for e in result.errors}
    assert str(victim) in errored
    assert all("worker process" in e.message for e in result.errors)
    assert not errored & set(result.files), "a file in a dead worker's share was counted as scanned"
