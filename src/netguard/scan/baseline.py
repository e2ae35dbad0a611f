"""Baselines: adopt the pack on a legacy repository, failing only on findings that are new.

A finding is identified by (control, file, resource, and the module call or parent stack it comes
through), not by line, so edits elsewhere in a file do not turn old findings into new ones.

Paths (version 2, written since Issue 17): each file is stored relative to the root of the git
repository holding it (the folder with `.git`), with `/` separators; a file in no repository is
stored relative to the folder of the baseline file. Findings are compared on the same form, so one
baseline matches a scan run from the repository root, from a subfolder, from another working
directory, or with absolute paths.

Version 1 baselines hold paths relative to the working directory they were created in. They are
still read: an entry matches when its path, taken from the current working directory, names the
finding's file (so they keep working when run from the folder that created them), or when it is
already the path from the repository root. `--create-baseline` rewrites one as version 2.

An entry for a scanned file that matches no finding is a warning on stderr (the finding was fixed,
filtered out, or its resource renamed); a baseline none of whose entries matches while the scan has
findings is a notice in the result, since its paths were most likely written for another folder.
"""

from __future__ import annotations

import json
import os
import posixpath
import sys
from pathlib import Path

from netguard.config import repository_root
from netguard.errors import NetguardError, printable
from netguard.scan.findings import ScanResult

BASELINE_VERSION = 2
READABLE_VERSIONS = (1, 2)
MAX_WARNINGS = 10  # entries named one by one; the rest are counted

Key = tuple[str, str, str, str]  # control, file, resource, via ("" or "file:line")


class _Paths:
    """Files in their stored form: relative to their repository's root, else to the baseline's folder."""

    def __init__(self, baseline: Path) -> None:
        self.anchor = self._real(baseline).parent
        self.roots: dict[Path, Path | None] = {}

    @staticmethod
    def _real(path: Path) -> Path:
        """Absolute, with the folders' symlinks resolved (the working directory may be reached through one)
        but the file's own name kept."""
        absolute = Path(os.path.abspath(path))
        return absolute.parent.resolve() / absolute.name

    def root_of(self, folder: Path) -> Path | None:
        if folder not in self.roots:
            root = repository_root(folder)
            self.roots[folder] = root if (root / ".git").exists() else None
        return self.roots[folder]

    def stored(self, file: str) -> str:
        path = self._real(Path(file))
        base = self.root_of(path.parent) or self.anchor
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            try:
                return Path(os.path.relpath(path, base)).as_posix()
            except ValueError:  # another drive (Windows): no relative form
                return path.as_posix()

    def via(self, via: str | None) -> str:
        if not via:
            return ""
        where, _, line = via.rpartition(":")
        return f"{self.stored(where)}:{line}" if where else via

    def key(self, control: str, file: str, resource: str, via: str | None) -> Key:
        return control, self.stored(file), resource, self.via(via)


def write_baseline(result: ScanResult, path: Path) -> int:
    paths = _Paths(path)
    entries = sorted({paths.key(f.control, f.file, f.resource, f.via) for f in result.active()})
    payload = {
        "version": BASELINE_VERSION,
        "paths": "relative to the root of the git repository holding each file (else to this file's folder)",
        "findings": [{"control": c, "file": f, "resource": r, **({"via": v} if v else {})} for c, f, r, v in entries],
    }
    try:
        path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise NetguardError(str(path), f"cannot write baseline: {exc.strerror}") from None
    return len(entries)


def _read(path: Path) -> tuple[int, list[dict[str, str]]]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NetguardError(str(path), f"cannot read baseline: {exc.strerror}") from None
    except (ValueError, RecursionError) as exc:
        raise NetguardError(str(path), f"not a netguard baseline: invalid JSON: {exc}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("findings"), list):
        raise NetguardError(str(path), "not a netguard baseline: it needs an object with a findings list")
    version = payload.get("version")
    if version not in READABLE_VERSIONS:
        raise NetguardError(str(path), f"not a netguard baseline: unsupported baseline version {version!r}")
    entries = payload["findings"]
    for index, entry in enumerate(entries):
        fields = ("control", "file", "resource")
        if (
            not isinstance(entry, dict)
            or not all(isinstance(entry.get(k), str) for k in fields)
            or not isinstance(entry.get("via", ""), str)
        ):
            raise NetguardError(
                str(path), f"not a netguard baseline: findings/{index} needs control, file and resource strings"
            )
    return version, entries


def _as_written(entry: dict[str, str]) -> Key:
    file = posixpath.normpath(entry["file"].replace("\\", "/"))
    return entry["control"], file, entry["resource"], entry.get("via", "")


def apply_baseline(result: ScanResult, path: Path) -> None:
    """Mark findings present in the baseline; they are reported but do not fail the run."""
    version, entries = _read(path)
    paths = _Paths(path)
    known: dict[Key, list[int]] = {}
    files_of: list[list[set[str]]] = []  # per entry and form, the files it needs scanned: its own and the caller's
    for index, entry in enumerate(entries):
        forms = {_as_written(entry)}
        if version == 1:  # relative to the working directory it was created in: this one, if run from there
            forms.add(paths.key(entry["control"], entry["file"], entry["resource"], entry.get("via")))
        for form in forms:
            known.setdefault(form, []).append(index)
        files_of.append([{form[1], form[3].rpartition(":")[0] or form[1]} for form in forms])
    matched: set[int] = set()
    for finding in result.findings:
        hits = known.get(paths.key(finding.control, finding.file, finding.resource, finding.via), [])
        finding.baselined = bool(hits)
        matched.update(hits)
    result.baseline = str(path)
    if not entries:
        return
    if not matched:
        if result.active():
            result.notices.append(_nothing_matched(path, version, len(entries), len(result.active())))
        return
    scanned = {paths.stored(file) for file in (*result.files, *(f.file for f in result.findings))}
    stale = [
        entries[i] for i in range(len(entries)) if i not in matched and any(need <= scanned for need in files_of[i])
    ]
    for entry in stale[:MAX_WARNINGS]:
        via = f" (via {entry['via']})" if entry.get("via") else ""
        print(
            printable(
                f"netguard: warning: {path}: baseline entry {entry['control']} {entry['file']}"
                f" {entry['resource']}{via} matches no finding (fixed, filtered out or renamed?"
                " recreate the baseline to drop it)"
            ),
            file=sys.stderr,
        )
    if len(stale) > MAX_WARNINGS:
        print(
            f"netguard: warning: {printable(str(path))}: {len(stale) - MAX_WARNINGS} more baseline entries"
            " match no finding",
            file=sys.stderr,
        )


def _nothing_matched(path: Path, version: int, entries: int, findings: int) -> str:
    if version == 1:
        why = (
            "it is a version 1 baseline, whose paths are relative to the folder it was created in: run from"
            " that folder, or recreate it with --create-baseline (version 2 paths work from any folder)"
        )
    else:
        why = (
            "its paths are relative to the root of the git repository holding each file: was it made for"
            " another repository or folder, or for other files?"
        )
    return (
        f"baseline {path}: none of its {entries} entries matches a finding of this scan, so all"
        f" {findings} findings count as new; {why}"
    )
