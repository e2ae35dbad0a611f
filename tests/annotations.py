"""Read the expectations written into fixtures.

YAML templates and Terraform files carry comments above a resource, in the style of semgrep tests:
    # ruleid: NG-VPC-001            the resource below must be reported for NG-VPC-001
    # ok: NG-VPC-002                the resource below must not be
    # ruleid: NG-EIP-001 aws_eip.x[2]   an explicit address, for count/for_each instances
JSON templates cannot hold comments, so each resource's Metadata["netguard-test"] lists the same
("ruleid": [...], "ok": [...]).

A fixture's scope is the set of controls it annotates: other controls' findings in it are ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

_ANNOTATION = re.compile(r"^\s*#\s*(ruleid|ok):\s*(NG-[A-Z]+-\d{3})(?:\s+(\S+))?\s*$")
_CFN_RESOURCE = re.compile(r"^  ([A-Za-z0-9]+):\s*(#.*)?$")
_TF_BLOCK = re.compile(r'^(resource|data)\s+"([\w-]+)"\s+"([\w-]+)"')


@dataclass
class Expectations:
    ruleid: set[tuple[str, str]] = field(default_factory=set)
    ok: set[tuple[str, str]] = field(default_factory=set)

    @property
    def scope(self) -> set[str]:
        return {control for control, _ in self.ruleid | self.ok}


def _from_comments(path: Path, resource_of_line) -> Expectations:
    expect = Expectations()
    pending: list[tuple[str, str, str | None]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _ANNOTATION.match(line)
        if match:
            pending.append(match.groups())
            continue
        resource = resource_of_line(line)
        if resource and pending:
            for kind, control, explicit in pending:
                getattr(expect, kind).add((control, explicit or resource))
            pending = []
    if pending:
        raise ValueError(f"{path}: annotations {pending} are not followed by a resource")
    return expect


def _cfn_yaml_resource(line: str) -> str | None:
    match = _CFN_RESOURCE.match(line)
    return match.group(1) if match else None


def _tf_resource(line: str) -> str | None:
    match = _TF_BLOCK.match(line)
    if not match:
        return None
    prefix = "data." if match.group(1) == "data" else ""
    return f"{prefix}{match.group(2)}.{match.group(3)}"


def _from_metadata(path: Path) -> Expectations:
    expect = Expectations()
    template = json.loads(path.read_text(encoding="utf-8"))
    for name, resource in template.get("Resources", {}).items():
        marks = resource.get("Metadata", {}).get("netguard-test", {})
        expect.ruleid |= {(control, name) for control in marks.get("ruleid", [])}
        expect.ok |= {(control, name) for control in marks.get("ok", [])}
    return expect


def expectations(path: Path) -> Expectations:
    if path.suffix == ".json":
        return _from_metadata(path)
    if path.suffix == ".tf":
        return _from_comments(path, _tf_resource)
    return _from_comments(path, _cfn_yaml_resource)


def fixture_kind(path: Path) -> str:
    if path.suffix == ".tf":
        return "terraform"
    return "cfn-json" if path.suffix == ".json" else "cfn-yaml"
