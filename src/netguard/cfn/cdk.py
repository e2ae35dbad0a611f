"""CDK output: people know their resources by construct path and their stacks by the names `cdk ls`
prints, not by logical ids and template file names.

A cloud assembly (`cdk.out`) is a folder whose `manifest.json` lists artifacts: stacks
(`aws:cloudformation:stack`, with `properties.templateFile`), nested assemblies (`cdk:cloud-assembly`,
with `properties.directoryName`; one per Stage), the construct tree (`cdk:tree`) and asset manifests
(`cdk:asset-manifest`). Each stack's `metadata` maps construct paths to logical ids
(`aws:cdk:logicalId`), which names resources even when path metadata (`aws:cdk:path`) is turned off.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from netguard.cfn.template import Template
from netguard.scan.findings import Finding

MANIFEST = "manifest.json"
MARKER = "cdk.out"  # the file `{"version": ...}` every cloud assembly holds
ASSET_PREFIX = "asset."  # asset folders: Lambda bundles, Docker build contexts (copies)
ASSETS_SUFFIX = ".assets.json"
TREE = "tree.json"  # the construct tree, named by the manifest's cdk:tree artifact (this is its usual name)


@dataclass
class Stack:
    """A stack artifact of a cloud assembly."""

    artifact: str  # artifact id (unique in its assembly)
    name: str  # display name, as `cdk ls` prints it ("Prod/Network" in a Stage)
    template: str  # properties.templateFile, relative to the assembly folder
    constructs: dict[str, str] = field(default_factory=dict)  # logical id -> construct path


@dataclass
class Assembly:
    """A cloud assembly: its stacks, the files CDK writes for itself, and what is wrong with its manifest."""

    manifest: Path
    stacks: list[Stack] = field(default_factory=list)
    nested: list[str] = field(default_factory=list)  # folders of nested assemblies (Stages)
    own_files: set[str] = field(default_factory=set)  # manifest, marker, tree, asset manifests: not templates
    problems: list[str] = field(default_factory=list)


def construct_path(raw: str) -> str:
    """The path users know: `aws:cdk:path` without the leading slash and the L1 `/Resource` child."""
    return raw.strip("/").removesuffix("/Resource")


def read_assembly(folder: Path) -> Assembly | None:
    """The cloud assembly in folder, or None when folder has no CDK manifest.

    A `manifest.json` is CDK's when it has an `artifacts` object, or when the `cdk.out` marker file sits
    beside it (then a manifest that cannot be read is a problem, not someone else's file).
    """
    manifest = folder / MANIFEST
    try:
        info = manifest.stat()
    except OSError:
        return None
    return _read(str(manifest), info.st_mtime_ns, info.st_size)


@lru_cache(maxsize=64)
def _read(manifest: str, _mtime: int, _size: int) -> Assembly | None:
    """One parse per manifest version: discovery and every template of the assembly ask for it."""
    from netguard.config import DEFAULT_LIMITS
    from netguard.safety import read_vetted

    folder = Path(manifest).parent
    marked = (folder / MARKER).is_file()
    raw, problem = read_vetted(Path(manifest), DEFAULT_LIMITS)
    data = None
    if raw is not None:
        try:
            data = json.loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            problem = f"not a JSON cloud assembly manifest: {' '.join(str(exc).split())}"
    artifacts = data.get("artifacts") if isinstance(data, dict) else None
    if not isinstance(artifacts, dict):
        if not marked:
            return None  # some other tool's manifest.json
        if isinstance(data, dict) and "artifacts" not in data:
            artifacts = {}  # an app with no stacks
        else:
            problem = problem or "cloud assembly manifest without an artifacts object"
            return Assembly(Path(manifest), own_files={MANIFEST, MARKER, TREE}, problems=[problem])
    assembly = Assembly(Path(manifest), own_files={MANIFEST, MARKER, TREE})
    for artifact_id, artifact in artifacts.items():
        _add_artifact(assembly, str(artifact_id), artifact)
    return assembly


def _add_artifact(assembly: Assembly, artifact_id: str, artifact: object) -> None:
    folder = assembly.manifest.parent
    if not isinstance(artifact, dict):
        assembly.problems.append(f"artifact {artifact_id} is not an object")
        return
    kind = artifact.get("type")
    properties = artifact.get("properties") if isinstance(artifact.get("properties"), dict) else {}
    if kind == "aws:cloudformation:stack":
        template = properties.get("templateFile")
        name = artifact.get("displayName") if isinstance(artifact.get("displayName"), str) else artifact_id
        if not isinstance(template, str) or not template:
            assembly.problems.append(f"stack {name} has no properties.templateFile")
            return
        if not (folder / template).is_file():
            assembly.problems.append(f"stack {name}: its template {template} is missing (run `cdk synth` again)")
        stack = Stack(artifact_id, name, template)
        metadata = artifact.get("metadata")
        for path, entries in metadata.items() if isinstance(metadata, dict) else ():
            for entry in entries if isinstance(entries, list) else ():
                if (
                    isinstance(entry, dict)
                    and entry.get("type") == "aws:cdk:logicalId"
                    and isinstance(entry.get("data"), str)
                ):
                    stack.constructs[entry["data"]] = construct_path(str(path))
        assembly.stacks.append(stack)
    elif kind == "cdk:cloud-assembly":
        directory = properties.get("directoryName")
        if not isinstance(directory, str) or not (folder / directory).is_dir():
            assembly.problems.append(f"nested assembly {artifact_id}: its folder {directory} is missing")
        else:
            assembly.nested.append(directory)
    elif kind in ("cdk:tree", "cdk:asset-manifest") and isinstance(properties.get("file"), str):
        assembly.own_files.add(properties["file"])


def stack_of(path: str) -> Stack | None:
    """The stack artifact whose template is the file at path, when a cloud assembly lists it."""
    folder = Path(path).parent
    assembly = read_assembly(folder)
    if assembly is None:
        return None
    target = os.path.realpath(path)
    return next((s for s in assembly.stacks if os.path.realpath(folder / s.template) == target), None)


def name_constructs(findings: list[Finding], template: Template, path: str) -> None:
    """Give each finding its resource's construct path and stack, and say them in its message.

    The construct path comes from the resource's `aws:cdk:path` metadata, else from the manifest's
    logical-id map; the stack from the cloud assembly that lists the template.
    """
    stack = stack_of(path)
    for finding in findings:
        resource = template.resources.get(finding.resource)
        metadata = resource.node.get("Metadata") if resource is not None else None
        raw = metadata.get("aws:cdk:path") if isinstance(metadata, dict) else None
        if isinstance(raw, str) and raw.strip("/"):
            finding.construct = construct_path(raw)
        elif stack is not None:
            finding.construct = stack.constructs.get(finding.resource)
        finding.stack = stack.name if stack is not None else None
        if finding.construct:
            finding.message += f" (CDK construct {finding.construct})"
        elif finding.stack:
            finding.message += f" (CDK stack {finding.stack})"
