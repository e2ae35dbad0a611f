"""Read the expectations written into fixtures, independently of netguard's own parser.

YAML templates and Terraform files carry comments right above a resource, in the style of semgrep:
    # ruleid: NG-VPC-001            the resource below must be reported for NG-VPC-001, on its line
    # ok: NG-VPC-002                the resource below must not be
    # ruleid: NG-EIP-001 aws_eip.x[2]   an explicit address, for count/for_each instances
JSON templates cannot hold comments, so each resource's Metadata["netguard-test"] lists the same
("ruleid": [...], "ok": [...]).

The line a finding must carry is the line its resource is declared on: for CloudFormation, found with
cfn-lint's decoder (not netguard's), for Terraform the `resource "type" "name"` line. A fixture's
scope is the set of controls it annotates: other controls' findings in it are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_ANNOTATION = re.compile(r"^\s*#\s*(ruleid|ok)\s*:\s*(\S+)(?:\s+(\S+))?\s*$")
_TF_DECLARATION = re.compile(r'^\s*(resource|data)\s+"([^"]+)"\s+"([^"]+)"')


@dataclass
class Expectations:
    ruleid: set[tuple[str, str]] = field(default_factory=set)
    ok: set[tuple[str, str]] = field(default_factory=set)
    lines: dict[str, int] = field(default_factory=dict)  # resource (as annotated) -> its declaration line
    problems: list[str] = field(default_factory=list)

    @property
    def scope(self) -> set[str]:
        return {control for control, _ in self.ruleid | self.ok}


def _cfn_resource_lines(path: Path) -> dict[str, int]:
    """Logical id -> line of its key, from cfn-lint's decoder (an implementation netguard does not share)."""
    from cfnlint.decode.decode import decode

    template, problems = decode(str(path))
    assert not problems, f"{path}: cfn-lint cannot decode this fixture: {problems}"
    resources = template.get("Resources", {})
    lines = {str(key): key.start_mark.line + 1 for key in resources}
    for key, loop in resources.items():  # Fn::ForEach: the output keys inside the loop, by their template
        if str(key).startswith("Fn::ForEach::") and isinstance(loop, list) and len(loop) == 3:
            lines.update({str(output): output.start_mark.line + 1 for output in loop[2]})
    return lines


def _tf_resource_lines(path: Path) -> dict[int, str]:
    found = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = _TF_DECLARATION.match(line)
        if match:
            prefix = "data." if match.group(1) == "data" else ""
            found[number] = f"{prefix}{match.group(2)}.{match.group(3)}"
    return found


def _from_comments(path: Path, declared: dict[int, str]) -> Expectations:
    """Annotations apply to the resource declared on the first non-comment line after them."""
    expect = Expectations()
    pending: list[tuple[str, str, str | None, int]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = _ANNOTATION.match(line)
        if match:
            kind, control, explicit = match.groups()
            pending.append((kind, control, explicit, number))
            continue
        if line.lstrip().startswith("#") or not pending:
            continue
        resource = declared.get(number)
        if resource is None:
            expect.problems.append(f"line {pending[0][3]}: annotation not directly above a resource")
            pending = []
            continue
        for kind, control, explicit, _ in pending:
            name = explicit or resource
            getattr(expect, kind).add((control, name))
            expect.lines[name] = number
        pending = []
    if pending:
        expect.problems.append(f"line {pending[0][3]}: annotation at the end of the file")
    return expect


def _from_metadata(path: Path) -> Expectations:
    import json

    expect = Expectations()
    template = json.loads(path.read_text(encoding="utf-8"))
    lines = _cfn_resource_lines(path)
    for name, resource in template.get("Resources", {}).items():
        marks = resource.get("Metadata", {}).get("netguard-test", {})
        expect.ruleid |= {(control, name) for control in marks.get("ruleid", [])}
        expect.ok |= {(control, name) for control in marks.get("ok", [])}
        expect.lines[name] = lines[name]
    return expect


def _from_tf_json(path: Path) -> Expectations:
    """Terraform JSON syntax: each block's "//" comment property holds its annotations. The line is
    found by text: the first line naming the block after the line naming its type."""
    import json

    expect = Expectations()
    text = path.read_text(encoding="utf-8").split("\n")
    data = json.loads("\n".join(text))
    for kind in ("resource", "data"):
        for type_name, blocks in data.get(kind, {}).items():
            type_line = next(i for i, line in enumerate(text) if f'"{type_name}"' in line)
            for name, body in blocks.items():
                line = next(i for i in range(type_line, len(text)) if f'"{name}"' in text[i]) + 1
                notes = body.get("//", [])
                for note in [notes] if isinstance(notes, str) else notes:
                    match = _ANNOTATION.match("# " + note)
                    if not match:
                        expect.problems.append(f"line {line}: not an annotation: {note!r}")
                        continue
                    verdict, control, explicit = match.groups()
                    address = explicit or f"{'data.' if kind == 'data' else ''}{type_name}.{name}"
                    getattr(expect, verdict).add((control, address))
                    expect.lines[address] = line
    return expect


def expectations(path: Path) -> Expectations:
    if path.name.endswith(".tf.json"):
        return _from_tf_json(path)
    if path.suffix == ".json":
        return _from_metadata(path)
    if path.suffix == ".tf":
        return _from_comments(path, _tf_resource_lines(path))
    return _from_comments(path, {line: name for name, line in _cfn_resource_lines(path).items()})


def fixture_kind(path: Path) -> str:
    if path.suffix == ".tf" or path.name.endswith(".tf.json"):
        return "terraform"
    return "cfn-json" if path.suffix == ".json" else "cfn-yaml"
