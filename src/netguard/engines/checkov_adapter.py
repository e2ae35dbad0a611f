"""Checkov adapters: turn Checkov's per-resource callbacks into calls to netguard's rules.

Checkov hands a check one resource at a time, but several controls need the whole template or
module (does any flow log point at this VPC?). The adapters therefore evaluate the whole file or
module once, cache the result, and answer each callback from it:
- CloudFormation: the template is parsed with Checkov's own parser, found through the resource's
  `__file__` marker or, for resources without Properties, Checkov's caller frame.
- Terraform: the module is rebuilt from the graph Checkov attaches to each check (`self.graph`), so
  count/for_each expansion and variable rendering are Checkov's own.
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from checkov.cloudformation.checks.resource.base_resource_check import BaseResourceCheck as CfnResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult

from netguard.catalog import Control, load_catalog
from netguard.cfn import rules as cfn_rules
from netguard.cfn.template import Template
from netguard.config import active_config
from netguard.terraform import rules as tf_rules
from netguard.terraform.module import Module, block_from_vertex
from netguard.violations import Violation

_CATEGORY = {"VPC": CheckCategories.LOGGING, "IAM": CheckCategories.IAM}
_CACHE_SIZE = 4096  # entries hold violation indexes, not templates: small
_GRAPH_CACHE_SIZE = 2  # entries hold Checkov graphs: large


def _category(control: Control) -> CheckCategories:
    return _CATEGORY.get(control.id.split("-")[1], CheckCategories.NETWORKING)


class _LRU(OrderedDict):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def remember(self, key: Any, value: Any) -> Any:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)
        return value


_templates: _LRU = _LRU(_CACHE_SIZE)
_modules: _LRU = _LRU(_GRAPH_CACHE_SIZE)
failures: dict[str, str] = {}  # real path -> why netguard's rules failed on it (Checkov swallows the error)


def _index(violations: list[Violation]) -> dict[tuple[str, str], Violation]:
    return {(v.control, v.resource): v for v in violations}


# --- CloudFormation -------------------------------------------------------------------------------
def preload_template(path: str, data: Mapping[str, Any]) -> None:
    """Let netguard scan hand over a template it already parsed, so Checkov checks do not parse again.

    A failure here is left for the checks themselves to hit and report, file by file.
    """
    key = _file_key(path)
    if key:
        config = active_config()
        try:
            violations = cfn_rules.evaluate(Template(data), config)
        except Exception:  # reported when Checkov's check runs on this file
            return
        _templates.remember((key, config), _index(violations))


def _file_key(path: str) -> tuple[str, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (os.path.realpath(path), stat.st_mtime_ns, stat.st_size)


def _cfn_violations(path: str) -> dict[tuple[str, str], Violation]:
    file_key = _file_key(path)
    if file_key is None:
        raise FileNotFoundError(path)
    key = (file_key, active_config())
    if key not in _templates:
        from checkov.cloudformation.parser import parse

        data, _lines = parse(path)
        if not isinstance(data, Mapping):
            raise ValueError(f"{path} is not a CloudFormation template")
        _templates.remember(key, _index(cfn_rules.evaluate(Template(data), active_config())))
    return _templates[key]


def explain(path: str, control_id: str, logical_id: str) -> str | None:
    """The message of a CloudFormation violation Checkov reported (its CFN report drops check details)."""
    try:
        violation = _cfn_violations(path).get((control_id, logical_id))
    except (OSError, ValueError):
        return None
    return violation.message if violation else None


def _template_path(conf: Mapping[str, Any]) -> str | None:
    props = conf.get("Properties")
    if isinstance(props, Mapping) and isinstance(props.get("__file__"), str):
        return props["__file__"]
    frame = sys._getframe(2)
    for _ in range(8):
        if frame is None:
            break
        candidate = frame.f_locals.get("file_abs_path")
        if isinstance(candidate, str):
            return candidate
        frame = frame.f_back
    return None


class NetguardCfnCheck(CfnResourceCheck):
    """One netguard control as a Checkov CloudFormation resource check."""

    def __init__(self, control: Control) -> None:
        self.control = control
        super().__init__(
            name=f"{control.id}: {control.title}",
            id=control.engines["checkov"],
            categories=[_category(control)],
            supported_resources=list(control.resource_types("cloudformation")),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        logical_id = self.entity_path.rsplit(":", 1)[-1]
        path = _template_path(conf)
        if path is None:
            self.details.append(f"{self.control.id}: netguard could not locate the template of {logical_id}")
            return CheckResult.FAILED
        try:
            violation = _cfn_violations(path).get((self.control.id, logical_id))
        except Exception as exc:
            failures[os.path.realpath(path)] = f"{type(exc).__name__}: {exc}"
            raise
        if violation is None:
            return CheckResult.PASSED
        self.details.append(violation.message)
        return CheckResult.FAILED


# --- Terraform ------------------------------------------------------------------------------------
def _module_key(attributes: Mapping[str, Any]) -> str:
    return f"{attributes.get('source_module_object_')!r}|{os.path.dirname(str(attributes.get('file_path_', '')))}"


def _graph_vertices(graph: Any) -> list[Mapping[str, Any]]:
    if hasattr(graph, "node_indices"):  # rustworkx
        return [graph[i][1] for i in graph.node_indices()]
    if hasattr(graph, "nodes"):  # networkx
        return [data for _, data in graph.nodes(data=True)]
    if hasattr(graph, "vs"):  # igraph
        return [v["attr"] for v in graph.vs]
    return []


def _tf_violations(graph: Any) -> dict[tuple[str, str], tuple[dict[tuple[str, str], Violation], str]]:
    """Per (kind, checkov address): the violations of its module and its module-local address."""
    key = (id(graph), active_config())
    cached = _modules.get(key)
    if cached is not None and cached[0] is graph:
        return cached[1]
    modules: dict[str, Module] = {}
    located: dict[tuple[str, str], tuple[str, str]] = {}
    for attributes in _graph_vertices(graph):
        block = block_from_vertex(attributes)
        if block is None:
            continue
        module_key = _module_key(attributes)
        modules.setdefault(module_key, Module()).blocks.append(block)
        address = str(attributes.get("__address__", block.address))
        located[(block.kind, os.path.realpath(block.file), address)] = (module_key, block.address)
    results = {k: _index(tf_rules.evaluate(m, active_config())) for k, m in modules.items()}
    answer = {where: (results[module_key], address) for where, (module_key, address) in located.items()}
    _modules.remember(key, (graph, answer))
    return answer


def _single_block_module(kind: str, type_name: str, conf: Mapping[str, Any]) -> tuple[dict, str]:
    name = str(conf.get("__address__", f"{type_name}.unknown")).split(".")[-1]
    attributes = {"block_type_": kind, "config_": {type_name: {name: conf}}, "file_path_": ""}
    block = block_from_vertex(attributes)
    module = Module([block] if block else [])
    return _index(tf_rules.evaluate(module, active_config())), block.address if block else ""


def _entity_file() -> str | None:
    """The Terraform file Checkov is checking, from its runner's frame (`run_block(full_file_path=...)`).

    Checkov builds one graph for every module folder of a run, so an address such as aws_vpc.main
    is not unique in it; the check callback is not told the file, but the runner's frame is.
    """
    frame = sys._getframe(2)
    for _ in range(10):
        if frame is None:
            return None
        key = frame.f_locals.get("full_file_path")
        path = getattr(key, "file_path", key)
        if isinstance(path, str):
            return os.path.realpath(path)
        frame = frame.f_back
    return None


def _tf_result(check: Any, kind: str, conf: dict[str, Any], entity_type: str) -> CheckResult:
    address = str(conf.get("__address__", ""))
    key = (kind, _entity_file(), address)
    found = _tf_violations(check.graph).get(key) if check.graph is not None else None
    violations, local_address = found if found else _single_block_module(kind, entity_type, conf)
    violation = violations.get((check.control.id, local_address))
    if violation is None:
        return CheckResult.PASSED
    check.details.append(violation.message)
    return CheckResult.FAILED


DATA_SOURCES = {"aws_iam_policy_document"}


# What register() covers. Plain `checkov --external-checks-dir` gets both; netguard narrows it before
# importing the checks, so a CloudFormation-only run never imports Checkov's Terraform machinery.
FRAMEWORKS: set[str] = {"cloudformation", "terraform"}
_registered: set[tuple[str, str]] = set()


def register(control_id: str, frameworks: set[str] | None = None) -> list[Any]:
    """Instantiate (and so register with Checkov) the checks for one control, once per framework."""
    control = load_catalog()[control_id]
    checks: list[Any] = []
    wanted = FRAMEWORKS if frameworks is None else frameworks
    if "cloudformation" in wanted and (control_id, "cloudformation") not in _registered:
        _registered.add((control_id, "cloudformation"))
        if control.resource_types("cloudformation"):
            checks.append(NetguardCfnCheck(control))
    if "terraform" in wanted and (control_id, "terraform") not in _registered:
        _registered.add((control_id, "terraform"))
        from netguard.engines.checkov_terraform import terraform_checks

        checks.extend(terraform_checks(control))
    return checks
