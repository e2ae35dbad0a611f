"""Find the CloudFormation and Terraform files under the paths given to `netguard scan`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from netguard.cfn.loader import CFN_SUFFIXES
from netguard.errors import InputError

# Folders that never hold a user's own infrastructure code.
SKIP_SILENTLY = {".git", ".hg", ".svn", "__pycache__", ".tox", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
# Folders that hold copies or downloads: skipped, and the report says so.
SKIP_WITH_NOTICE = {
    ".terraform": "Terraform's download cache",
    "node_modules": "installed packages",
    ".aws-sam": "SAM build output (copies of the templates)",
}


def _skip_reason(folder: Path) -> str | None:
    """Why a folder met while walking is not scanned, or None to scan it."""
    if folder.name in SKIP_SILENTLY:
        return ""
    if folder.name in SKIP_WITH_NOTICE:
        return SKIP_WITH_NOTICE[folder.name]
    if (folder / "pyvenv.cfg").is_file():
        return "a Python virtual environment"
    return None


@dataclass
class Discovered:
    cfn: list[Path] = field(default_factory=list)
    terraform: list[Path] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def _classify(path: Path, found: Discovered, explicit: bool) -> None:
    if path.suffix == ".tf":
        found.terraform.append(path)
    elif path.suffix in CFN_SUFFIXES:
        found.cfn.append(path)
    elif explicit:
        found.errors.append(
            InputError(str(path), "not a CloudFormation (.yaml/.yml/.json/.template) or Terraform (.tf) file")
        )


def discover(paths: list[str]) -> Discovered:
    """Walk folders without following directory symlinks, so a symlink loop cannot trap the scan.

    A path given explicitly is always scanned; below it, only the folders listed above are skipped.
    """
    found = Discovered()
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            if not os.path.lexists(path):
                found.errors.append(InputError(raw, "no such file or directory"))
            elif path not in seen:  # a file, or a FIFO or device the reader will refuse by name
                seen.add(path)
                _classify(path, found, explicit=True)
            continue
        for folder, dirs, files in os.walk(
            path,
            followlinks=False,
            onerror=lambda e: found.errors.append(InputError(str(e.filename), f"cannot list folder: {e.strerror}")),
        ):
            kept = []
            for name in sorted(dirs):
                reason = _skip_reason(Path(folder) / name)
                if reason is None:
                    kept.append(name)
                elif reason:
                    found.notices.append(f"{Path(folder) / name}: not scanned, {reason}")
            dirs[:] = kept
            for name in sorted(files):
                file_path = Path(folder) / name
                if file_path in seen:
                    continue
                seen.add(file_path)
                _classify(file_path, found, explicit=False)
    return found
