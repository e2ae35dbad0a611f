"""Checkov plug-in: one Checkov check per control and framework, answering from netguard's evaluation.

Checkov hands a check one resource at a time, but most controls need the whole template or module
(does any flow log point at this VPC?). The check finds the file the resource came from, runs the
same per-file evaluation `netguard scan` runs (cached per file content and config), and answers for
the resource from it. A resource netguard cannot place or evaluate fails: the plug-in never passes
what it did not evaluate.

Checkov APIs used that are not documented for check authors:
- `BaseCheck.entity_path` ("<file relative to the scan root>:<type>:<name>"), set by BaseCheck.run;
- `Properties["__file__"]`, the path marker Checkov's CloudFormation YAML/JSON parser adds;
- `conf["__address__"]`, the Terraform address Checkov gives each resource instance;
- `checkov.cloudformation.runner.convert_graph_vertices_to_definitions`, wrapped so that Checkov keeps
  resources whose Condition is false under the parameters' defaults (it drops them, and the stack can
  be deployed with them: a false pass otherwise).
Checkov tells a check neither the scan root nor the absolute path, so the file is found by joining
the relative path with the working directory or a `-d/--directory` argument of the command line.

Fail closed: a check never raises into Checkov (which would drop the framework's whole report and
exit 0). A config that cannot be used fails every resource a netguard check is given, naming the
config file; the error is said once on standard error.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from checkov.cloudformation.checks.resource.base_resource_check import BaseResourceCheck as CfnResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult

from netguard.catalog import Control, load_catalog
from netguard.engines import Cache, config_key, file_key, plugin_config, say_once, turned_off
from netguard.errors import NetguardError
from netguard.scan.findings import Finding

_CATEGORY = {"VPC": CheckCategories.LOGGING, "IAM": CheckCategories.IAM}
_results: Cache = Cache(64)
_callers: dict[str, list[Path]] = {}  # module call name -> folders that call it


def keep_conditional_resources() -> None:
    """Make Checkov present every CloudFormation resource, whatever its Condition (see the list above)."""
    import checkov.cloudformation.runner as cfn_runner

    original = cfn_runner.convert_graph_vertices_to_definitions
    if getattr(original, "netguard", False):
        return

    def convert(vertices: list[Any], root_folder: str | None) -> Any:
        for vertex in vertices:
            if getattr(vertex, "block_type", None) == "resource":
                vertex.condition = True
        return original(vertices, root_folder)

    convert.netguard = True  # type: ignore[attr-defined]
    cfn_runner.convert_graph_vertices_to_definitions = convert


def category(control: Control) -> CheckCategories:
    return _CATEGORY.get(control.id.split("-")[1], CheckCategories.NETWORKING)


def _scan_roots() -> list[str]:
    """Where Checkov may have been pointed: -d/--directory values, then the working directory."""
    roots: list[str] = []
    argv = sys.argv[1:]
    for index, arg in enumerate(argv):
        if arg in ("-d", "--directory") and index + 1 < len(argv):
            roots.append(argv[index + 1])
        elif arg.startswith("--directory="):
            roots.append(arg.split("=", 1)[1])
    roots.append(os.getcwd())
    return roots


def locate(entity_path: str, conf: Mapping[str, Any]) -> str | None:
    """The file a resource came from, or None when it cannot be told for certain."""
    props = conf.get("Properties")
    marker = props.get("__file__") if isinstance(props, Mapping) else None
    if isinstance(marker, str) and os.path.isfile(marker):
        return marker
    relative = entity_path.split(":", 1)[0].lstrip("/")
    found = {os.path.realpath(os.path.join(root, relative)) for root in _scan_roots()}
    found = {path for path in found if os.path.isfile(path)}
    return found.pop() if len(found) == 1 else None


class Evaluated:
    """netguard's verdicts for one file: unsuppressed findings by (control, resource), the resources it
    evaluated, and any errors."""

    def __init__(self, findings: list[Finding], errors: list[str], resources: set[str]) -> None:
        self.findings = {(f.control, f.resource): f for f in findings if f.suppressed is None}
        self.errors = errors
        self.resources = resources


def _is_plan_file(path: str) -> bool:
    """Checkov's terraform_plan framework hands over a plan's .json file (a .tf.json file is source)."""
    return path.endswith(".json") and not path.endswith(".tf.json")


def _unit(path: str, framework: str) -> Any:
    """netguard's evaluation of the template, or of the whole module folder, the file belongs to."""
    from netguard.scan.run import scan_module, scan_template

    config = plugin_config()
    if framework == "cloudformation" or _is_plan_file(path):
        key: Any = (file_key(path), config_key(config))
        if key not in _results:
            _results.remember(key, scan_template(path, config))
        return _results[key]
    folder = Path(path).parent
    files = tuple(sorted(str(p) for p in [*folder.glob("*.tf"), *folder.glob("*.tf.json")]))
    key = (tuple(file_key(f) for f in files), config_key(config))
    if key not in _results:
        _results.remember(key, scan_module(files, config))
    return _results[key]


def _caller_folders(call: str) -> list[Path]:
    """Folders below the scan roots whose .tf files call a module of that name (`module "vpc"`):
    where the chain of calls that gave Checkov `module.vpc.<address>` can start."""
    if call not in _callers:
        pattern = re.compile(rf'^\s*module\s+"{re.escape(call)}"', re.M)
        found: list[Path] = []
        for root in _scan_roots():
            for folder, dirs, files in os.walk(root):
                dirs[:] = [d for d in dirs if not d.startswith(".") and d != "node_modules"]
                for name in files:
                    if name.endswith(".tf"):
                        try:
                            text = Path(folder, name).read_text(encoding="utf-8", errors="replace")
                        except OSError:
                            continue
                        if pattern.search(text):
                            found.append(Path(folder))
                            break
        _callers[call] = sorted(set(found))
    return _callers[call]


def _evaluate_called(path: str, address: str) -> Evaluated | None:
    """netguard's evaluation of a called module's file, as part of the root module that calls it."""
    real = os.path.realpath(path)
    for folder in _caller_folders(address.split(".", 2)[1].split("[", 1)[0]):
        unit = _unit(str(next(iter(sorted(folder.glob("*.tf"))))), "terraform")
        resources = next((r for f, r in unit.resources.items() if os.path.realpath(f) == real), set())
        if address in resources or address.split("[", 1)[0] in resources:
            mine = [f for f in unit.findings if os.path.realpath(f.file) == real]
            return Evaluated(mine, [e.message for e in unit.errors], resources)
    return None


def _evaluate(path: str, framework: str) -> Evaluated:
    unit = _unit(path, framework)
    real = os.path.realpath(path)
    mine = [f for f in unit.findings if os.path.realpath(f.file) == real]
    resources = next((r for f, r in unit.resources.items() if os.path.realpath(f) == real), set())
    return Evaluated(mine, [e.message for e in unit.errors], resources)


def verdict(check: Any, control: Control, framework: str, resource: str, conf: Mapping[str, Any]) -> CheckResult:
    """Checkov's answer for one resource, from netguard's evaluation of its file.

    Never raises: Checkov logs a check's exception and drops the whole framework's report, exits 0 and
    so passes everything. A config netguard cannot use fails every resource, with the reason in the
    check's details and said once on standard error; any other failure fails the resource.
    """
    try:
        config = plugin_config()
    except NetguardError as exc:
        say_once(f"netguard: {exc}\nnetguard: every netguard check (CKV_NG_*) fails until the config is fixed")
        check.details.append(f"{control.id}: netguard cannot run, its config is invalid: {exc}")
        return CheckResult.FAILED
    off = turned_off(config, control.id)
    if off:
        check.details.append(off)
        return CheckResult.SKIPPED
    try:
        return _verdict(check, control, framework, resource, conf)
    except Exception as exc:
        logging.getLogger(__name__).debug("netguard failed on %s", resource, exc_info=True)
        check.details.append(f"{control.id}: netguard failed on {resource}: {type(exc).__name__}: {exc}")
        return CheckResult.FAILED


def _verdict(check: Any, control: Control, framework: str, resource: str, conf: Mapping[str, Any]) -> CheckResult:
    path = locate(check.entity_path, conf)
    if path is None:
        check.details.append(f"{control.id}: netguard could not locate the file of {resource}")
        return CheckResult.FAILED
    if resource.startswith("module.") and not _is_plan_file(path):
        found = _evaluate_called(path, resource)  # judged with the inputs of the call, as netguard scan does
        if found is None:
            check.details.append(f"{control.id}: netguard could not find the root module calling {resource}")
            return CheckResult.FAILED
        evaluated = found
    else:
        evaluated = _evaluate(path, framework)
    if evaluated.errors:
        check.details.append(f"{control.id}: netguard could not evaluate this file: {evaluated.errors[0]}")
        return CheckResult.FAILED
    base = resource.split("[", 1)[0]
    if resource not in evaluated.resources and base not in evaluated.resources:
        check.details.append(f"{control.id}: netguard did not evaluate {resource}; it cannot vouch for it")
        return CheckResult.FAILED
    finding = evaluated.findings.get((control.id, resource))
    if finding is None and resource not in evaluated.resources:
        # netguard left this block unexpanded (its count/for_each is unknown): the block's verdict holds.
        finding = evaluated.findings.get((control.id, base))
    if finding is None and resource == base:
        # Checkov left the block unexpanded where netguard expanded it: any instance's finding fails it.
        finding = next(
            (f for (c, r), f in evaluated.findings.items() if c == control.id and r.startswith(base + "[")), None
        )
    if finding is None:
        return CheckResult.PASSED
    check.details.append(finding.message)
    return CheckResult.FAILED


class NetguardCfnCheck(CfnResourceCheck):
    """One netguard control as a Checkov CloudFormation resource check."""

    def __init__(self, control: Control) -> None:
        self.control = control
        super().__init__(
            name=f"{control.id}: {control.title}",
            id=control.engines["checkov"],
            categories=[category(control)],
            supported_resources=list(control.resource_types("cloudformation")),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        logical_id = self.entity_path.rsplit(":", 1)[-1]
        return verdict(self, self.control, "cloudformation", logical_id, conf)


def register(control_id: str) -> list[Any]:
    """Instantiate, and so register with Checkov, the checks of one control (CloudFormation, Terraform)."""
    from netguard.engines.checkov.terraform import terraform_checks

    control = load_catalog()[control_id]
    checks: list[Any] = []
    keep_conditional_resources()
    if control.resource_types("cloudformation"):
        checks.append(NetguardCfnCheck(control))
    checks.extend(terraform_checks(control))
    return checks
