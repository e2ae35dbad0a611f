"""Load a CloudFormation template (YAML with short-form tags, or JSON), reporting errors as values."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from netguard.cfn.marked import DuplicateKeyError, load_json, load_yaml_documents
from netguard.config import DEFAULT_LIMITS, Limits
from netguard.safety import check_aliases, check_shape, read_vetted

CFN_SUFFIXES = {".yaml", ".yml", ".json", ".template"}
PLAN_MARK_LIMIT = 1024 * 1024  # bytes; larger plans report line 1 (a plan has no source lines)
_TEMPLATE_MARK = re.compile(
    r'^(?:Resources|AWSTemplateFormatVersion)\s*:|"(?:Resources|AWSTemplateFormatVersion)"\s*:', re.M
)


@dataclass
class Loaded:
    """A parsed file: data when it parsed, error (and line) when it did not."""

    path: str
    data: Any = None
    error: str | None = None
    line: int | None = None


def is_template(data: Any) -> bool:
    return isinstance(data, dict) and ("Resources" in data or "AWSTemplateFormatVersion" in data)


def load_template(path: Path, limits: Limits = DEFAULT_LIMITS) -> Loaded:
    """Parse a candidate template file, recording the line of every key.

    The bytes are vetted first (size, encoding, nesting, alias expansion): no parser ever sees a file
    that could crash or exhaust it.
    """
    name = str(path)
    raw, problem = read_vetted(path, limits)
    if problem:
        return Loaded(name, error=problem)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Loaded(name, error=f"not valid UTF-8 (byte {exc.start})")
    if not text.strip():
        return Loaded(name)
    plan = len(text) > PLAN_MARK_LIMIT and '"terraform_version"' in text[:4096]
    if not plan and len(raw) > limits.max_template_mb * 1024 * 1024 and _TEMPLATE_MARK.search(text):
        # CloudFormation refuses such a template, and parsing it is what an attacker would want us to do.
        return Loaded(
            name,
            error=f"a {len(raw) / 1048576:.1f} MB template, over CloudFormation's limit of"
            f" {limits.max_template_mb:g} MB (limits.max_template_mb)",
        )
    if path.suffix == ".json" or text.lstrip().startswith("{"):
        if "\r" in text and "\n" not in text:
            text = text.replace("\r", "\n")  # old Mac line ends: lines are counted by "\n"
        # A large Terraform plan is output, not source: its lines are not worth a second pass.
        try:
            return _shaped(name, load_json(text, mark=not plan), limits)
        except DuplicateKeyError as exc:
            return Loaded(name, error=f"invalid JSON: {exc}", line=exc.line or None)
        except json.JSONDecodeError as exc:
            if path.suffix == ".json":
                return Loaded(name, error=f"invalid JSON: {exc.msg}", line=exc.lineno)
        except RecursionError:
            return Loaded(name, error="nested too deeply to parse")
    problem = check_aliases(text, limits)
    if problem:
        return Loaded(name, error=problem)
    try:
        documents = load_yaml_documents(text)
    except DuplicateKeyError as exc:
        return Loaded(name, error=f"invalid YAML: {exc}", line=exc.line)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        return Loaded(name, error=f"invalid YAML: {problem}", line=mark.line + 1 if mark else None)
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        return Loaded(name, error=f"invalid YAML: {' '.join(str(exc).split())[:200]}")
    if len(documents) > 1 and any(is_template(d) for d in documents):
        # CloudFormation and cfn-lint refuse a stream of documents; skipping it would be a false pass.
        return Loaded(name, error=f"{len(documents)} YAML documents (--- markers) in one file; a template is one")
    if len(documents) != 1:
        return Loaded(name)
    return _shaped(name, documents[0], limits)


def _shaped(name: str, data: Any, limits: Limits) -> Loaded:
    problem = check_shape(data, limits) if is_template(data) else None
    return Loaded(name, error=problem) if problem else Loaded(name, data=data)


def structure_problems(data: dict[str, Any]) -> list[str]:
    """Structural faults that make a template undeployable; engines are not run on such a file."""
    resources = data.get("Resources")
    if resources is None:
        return []
    if not isinstance(resources, dict):
        return [f"Resources is a {type(resources).__name__}, not a mapping"]
    problems = []
    for name, resource in resources.items():
        if not isinstance(resource, dict):
            problems.append(f"resource {name} is not a mapping")
        elif "Type" not in resource:
            problems.append(f"resource {name} has no Type")
        elif not isinstance(resource["Type"], str):
            problems.append(f"resource {name} has a Type that is not a string")
        elif "Properties" in resource and not isinstance(resource["Properties"], dict):
            problems.append(f"resource {name} has Properties that are not a mapping")
    return problems


def reference_problems(data: dict[str, Any]) -> list[str]:
    """Ref/GetAtt to names that do not exist, and circular references between resources.

    Templates with a Transform (SAM, macros) define resources only after the transform runs, so
    their references cannot be checked here.
    """
    from netguard.cfn.template import PSEUDO_PARAMETERS, Template

    resources = data.get("Resources")
    if not isinstance(resources, dict) or "Transform" in data:
        return []
    template = Template(data)
    parameters = data.get("Parameters") if isinstance(data.get("Parameters"), dict) else {}
    # A CloudFormation module (Type ...::MODULE) adds resources named after it: `Vpc` + `Subnet`.
    modules = [name for name, r in resources.items() if str(r.get("Type", "")).endswith("::MODULE")]
    problems: list[str] = []
    edges: dict[str, set[str]] = {}
    for name, resource in resources.items():
        targets: set[str] = set()
        for ref in template.references(resource.get("Properties", {})):
            if ref.attribute is None and (ref.target in parameters or ref.target in PSEUDO_PARAMETERS):
                continue
            if ref.target not in resources and any(ref.target.startswith(m) for m in modules):
                continue  # a resource the module defines
            if ref.target not in resources:
                kind = "Ref" if ref.attribute is None else "GetAtt"
                problems.append(f"resource {name}: {kind} to {ref.target}, which is not defined")
                continue
            targets.add(ref.target)
        depends = resource.get("DependsOn")
        for target in depends if isinstance(depends, list) else [depends] if isinstance(depends, str) else []:
            if target in resources:
                targets.add(target)
            else:
                problems.append(f"resource {name}: DependsOn {target}, which is not defined")
        edges[name] = targets
    cycle = _find_cycle(edges)
    if cycle:
        problems.append(f"circular reference: {' -> '.join(cycle)}")
    return problems


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle in the reference graph, found iteratively (templates can have thousands of resources)."""
    state: dict[str, int] = {}
    for start in edges:
        if state.get(start):
            continue
        stack = [(start, iter(sorted(edges.get(start, ()))))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return [*path[path.index(child) :], child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(edges.get(child, ())))))
    return None
