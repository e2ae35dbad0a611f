"""Find the CloudFormation and Terraform files under the paths given to `netguard scan`.

A CDK cloud assembly (a folder whose `manifest.json` is CDK's, such as `cdk.out`) is read through its
manifest: the stacks it lists are scanned (a listed template that is missing is an error naming the
manifest), CDK's own files (manifest, tree, asset manifests) are not templates, and its asset folders
(`asset.*`, copies of the app's files bundled for deployment) are skipped with a notice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from netguard.cfn.cdk import ASSET_PREFIX, ASSETS_SUFFIX, MANIFEST, Assembly, read_assembly
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
        if path.name == MANIFEST and path.is_file() and read_assembly(path.parent) is not None:
            path = path.parent  # a cloud assembly named by its manifest: scan the assembly
        if not path.is_dir():
            if not os.path.lexists(path):
                found.errors.append(InputError(raw, "no such file or directory"))
            elif path not in seen:  # a file, or a FIFO or device the reader will refuse by name
                seen.add(path)
                _classify(path, found, explicit=True)
            continue
        for folder, files, assembly in _walk(path, found):
            own = _assembly_stacks(assembly, found, seen) if assembly is not None else set()
            for name in files:
                if name in own:
                    continue
                file_path = folder / name
                if file_path in seen:
                    continue
                seen.add(file_path)
                _classify(file_path, found, explicit=False)
    return found


def _assembly_stacks(assembly: Assembly, found: Discovered, seen: set[Path]) -> set[str]:
    """Queue the templates a cloud assembly lists, report what is wrong with its manifest, and return
    the names in its folder that are CDK's own files rather than templates."""
    folder = assembly.manifest.parent
    found.errors.extend(InputError(str(assembly.manifest), problem) for problem in assembly.problems)
    for stack in assembly.stacks:
        path = folder / stack.template  # the form the walk gives the same file, so it is not queued twice
        if path not in seen and path.is_file():
            seen.add(path)
            found.cfn.append(path)
    return assembly.own_files


def _walk(root: Path, found: Discovered) -> Iterator[tuple[Path, list[str], Assembly | None]]:
    """(folder, sorted non-folder names, its cloud assembly if any) below root, depth first, without
    recursion (trees can be thousands of folders deep) and without following folder symlinks (a loop
    cannot trap it)."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            found.errors.append(InputError(str(folder), f"cannot list folder: {exc.strerror or exc}"))
            continue
        files = [e.name for e in entries if not e.is_dir(follow_symlinks=False)]
        assembly = read_assembly(folder) if MANIFEST in files else None
        subfolders, assets = [], 0
        for entry in entries:
            if assembly is not None and entry.name.startswith(ASSET_PREFIX) and entry.is_dir(follow_symlinks=False):
                assets += 1
            elif entry.is_dir(follow_symlinks=False):
                reason = _skip_reason(Path(entry.path))
                if reason is None:
                    subfolders.append(Path(entry.path))
                elif reason:
                    found.notices.append(f"{entry.path}: not scanned, {reason}")
        if assets:
            found.notices.append(
                f"{folder}: {assets} CDK asset folder(s) ({ASSET_PREFIX}*) not scanned, copies bundled for deployment"
            )
        if assembly is not None:
            files = [name for name in files if not name.endswith(ASSETS_SUFFIX)]
        yield folder, files, assembly
        stack.extend(reversed(subfolders))
