"""Baselines: adopt the pack on a legacy repository, failing only on findings that are new.

A finding is identified by (control, file, resource), not by line, so edits elsewhere in a file do
not turn old findings into new ones. Paths are stored relative to the working directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from netguard.errors import NetguardError
from netguard.scan.findings import ScanResult

BASELINE_VERSION = 1


def _key(control: str, file: str, resource: str, via: str | None = None) -> tuple[str, str, str, str]:
    def relative(path: str) -> str:
        return Path(os.path.relpath(Path(path).resolve(), Path.cwd())).as_posix()

    site = ""
    if via:
        where, _, line = via.rpartition(":")
        site = f"{relative(where)}:{line}"
    return control, relative(file), resource, site


def write_baseline(result: ScanResult, path: Path) -> int:
    entries = sorted({_key(f.control, f.file, f.resource, f.via) for f in result.active()})
    payload = {
        "version": BASELINE_VERSION,
        "findings": [{"control": c, "file": f, "resource": r, **({"via": v} if v else {})} for c, f, r, v in entries],
    }
    try:
        path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise NetguardError(str(path), f"cannot write baseline: {exc.strerror}") from None
    return len(entries)


def apply_baseline(result: ScanResult, path: Path) -> None:
    """Mark findings present in the baseline; they are reported but do not fail the run."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        known = {
            (e["control"], e["file"], e["resource"], e.get("via", ""))
            if "via" in e
            else _key(e["control"], e["file"], e["resource"])
            for e in payload["findings"]
        }
        if payload.get("version") != BASELINE_VERSION:
            raise ValueError(f"unsupported baseline version {payload.get('version')!r}")
    except OSError as exc:
        raise NetguardError(str(path), f"cannot read baseline: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise NetguardError(str(path), f"not a netguard baseline: {exc}") from None
    for finding in result.findings:
        finding.baselined = _key(finding.control, finding.file, finding.resource, finding.via) in known
    result.baseline = str(path)
