"""Find the CloudFormation and Terraform files under the paths given to `netguard scan`."""

from __future__ import annotations

import os
from collections.abc import Iterator
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
    if path.suffix == ".tf" or path.name.endswith(".tf.json"):
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
        for folder, files in _walk(path, found):
            for name in files:
                file_path = folder / name
                if file_path in seen:
                    continue
                seen.add(file_path)
                _classify(file_path, found, explicit=False)
    return found


def _walk(root: Path, found: Discovered) -> Iterator[tuple[Path, list[str]]]:
    """(folder, sorted non-folder names) below root, depth first, without recursion (trees can be
    thousands of folders deep) and without following folder symlinks (a loop cannot trap it)."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            found.errors.append(InputError(str(folder), f"cannot list folder: {exc.strerror or exc}"))
            continue
        subfolders = []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                reason = _skip_reason(Path(entry.path))
                if reason is None:
                    subfolders.append(Path(entry.path))
                elif reason:
                    found.notices.append(f"{entry.path}: not scanned, {reason}")
        yield folder, [e.name for e in entries if not e.is_dir(follow_symlinks=False)]
        stack.extend(reversed(subfolders))
