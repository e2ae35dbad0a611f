"""Find the CloudFormation and Terraform files under the paths given to `netguard scan`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from netguard.cfn.loader import CFN_SUFFIXES
from netguard.errors import InputError

SKIP_DIRS = {
    ".git",
    ".hg",
    ".svn",
    ".terraform",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".aws-sam",
    "cdk.out",
}


@dataclass
class Discovered:
    cfn: list[Path] = field(default_factory=list)
    terraform: list[Path] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)


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
    """Walk folders without following directory symlinks, so a symlink loop cannot trap the scan."""
    found = Discovered()
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            if path not in seen:
                seen.add(path)
                _classify(path, found, explicit=True)
            continue
        if not path.is_dir():
            found.errors.append(InputError(raw, "no such file or directory"))
            continue
        for folder, dirs, files in os.walk(
            path,
            followlinks=False,
            onerror=lambda e: found.errors.append(InputError(str(e.filename), f"cannot list folder: {e.strerror}")),
        ):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for name in sorted(files):
                file_path = Path(folder) / name
                if file_path in seen or name == ".netguard.yaml":
                    continue
                seen.add(file_path)
                _classify(file_path, found, explicit=False)
    return found
