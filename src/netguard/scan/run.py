"""`netguard scan`: discover, read and parse each file once, run netguard's rules, suppress, report.

The work is split into units: one CloudFormation template, or one Terraform module folder (its files
refer to each other). A unit is evaluated in one go and returns its findings and errors, so a unit
that fails costs only itself, and units can run in worker processes.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import Any

from netguard.catalog import load_catalog
from netguard.config import (
    CONFIG_ENV,
    CONFIG_NAME,
    DEFAULT_CONFIG,
    ScanConfig,
    find_config,
    load_config,
    repository_root,
)
from netguard.errors import InputError, NetguardError
from netguard.scan.discover import discover
from netguard.scan.findings import Finding, ScanResult
from netguard.scan.policy_files import is_policy_document, scan_policy_file
from netguard.scan.selection import Selection, select
from netguard.scan.suppress import Spans, apply_suppressions
from netguard.scan.unit import ENGINE, Unit, UnitResult
from netguard.violations import Violation


def resolve_config(explicit: str | None, paths: list[str] | None = None) -> ScanConfig:
    """--config, else $NETGUARD_CONFIG, else `.netguard.yaml` at the root of the repository holding the
    scanned paths (the working directory's when none is given), as the Checkov and cfn-lint plug-ins
    find it.

    Only a repository root's file counts: pre-commit orders file names as it likes, and a config in a
    subfolder is written by whoever writes the pull request. Paths in repositories whose configs differ
    are an error: which one applies would otherwise depend on the order of the arguments.
    """
    chosen = explicit or os.environ.get(CONFIG_ENV)
    if chosen:
        return load_config(Path(chosen))
    starts = [Path(p) if Path(p).is_dir() else Path(p).parent for p in paths or ()] or [Path.cwd()]
    # a path outside any repository (a download in /tmp) takes the working directory's config, never
    # a stray .netguard.yaml lying beside it
    starts = [
        start if start.exists() and (repository_root(start) / ".git").exists() else Path.cwd() for start in starts
    ]
    found = {config: None for start in starts if (config := find_config(start))}
    if len(found) > 1:
        names = ", ".join(str(path) for path in found)
        raise NetguardError(
            "--config",
            f"the paths are in repositories with different configs ({names}): scan them apart, or give --config",
        )
    return load_config(next(iter(found))) if found else DEFAULT_CONFIG


def _findings(violations: list[Violation], where: dict[str, tuple[str, int]], fallback: str) -> list[Finding]:
    catalog = load_catalog()
    found = []
    for violation in violations:
        file, line = violation.where or where.get(violation.resource, (fallback, 0))
        control = catalog[violation.control]
        found.append(
            Finding(
                control=control.id,
                file=file,
                resource=violation.resource,
                line=line,
                severity=control.severity,
                message=violation.message + (f" (module called at {violation.via})" if violation.via else ""),
                engines=[ENGINE],
                via=violation.via,
            )
        )
    return found


def scan_template(path: str, config: ScanConfig) -> UnitResult:
    """One CloudFormation file: one read, one parse, the rules, suppressions."""
    from netguard.cfn.foreach import expand_resources, has_foreach
    from netguard.cfn.loader import is_template, load_template

    out = UnitResult()
    loaded = load_template(Path(path), config.limits)
    if loaded.error:
        out.errors.append(InputError(path, loaded.error, loaded.line))
        return out
    if is_template(loaded.data) and has_foreach(loaded.data):
        problems = expand_resources(loaded.data)
        out.errors.extend(InputError(path, problem) for problem in problems)
    if is_policy_document(loaded.data):
        return scan_policy_file(path, loaded.data, config)
    if not is_template(loaded.data):
        from netguard.terraform.plan import is_plan  # Terraform plan JSON: see _scan_plan

        if is_plan(loaded.data):
            return _scan_plan(path, loaded.data, config, out)
        unread = _unevaluated_terraform(path, loaded.data)
        if unread:  # Terraform netguard does not read yet: an error, never a silent pass
            out.errors.append(InputError(path, unread))
        return out  # any other YAML/JSON file is not ours to judge
    _evaluate_template(path, loaded.data, config, out)
    return out


MAX_STACK_DEPTH = 5  # nested stacks within nested stacks


def _evaluate_template(
    path: str,
    data: dict,
    config: ScanConfig,
    out: UnitResult,
    via: str | None = None,
    depth: int = 0,
    active: set[Path] | None = None,
) -> None:
    """The rules on one parsed template, then on the nested stacks it names by a local TemplateURL."""
    from netguard.cfn import rules as cfn_rules
    from netguard.cfn.cdk import name_constructs
    from netguard.cfn.loader import reference_problems, structure_problems
    from netguard.cfn.sam import expand_sam, is_sam
    from netguard.cfn.template import Template

    broken = structure_problems(data)
    if broken:
        out.errors.extend(InputError(path, problem) for problem in broken)
        return
    out.errors.extend(InputError(path, problem) for problem in reference_problems(data))
    template = Template(data)
    judged, origin = template, {}
    if is_sam(data):  # judged as deployed: after the real SAM transform
        expansion = expand_sam(data)
        out.notices.extend(f"{path}: {notice}" for notice in expansion.notices)
        judged, origin = Template(expansion.data), expansion.origin
    violations = [
        replace(v, resource=origin[v.resource], message=f"{v.message} (generated by SAM from {origin[v.resource]})")
        if v.resource in origin
        else v
        for v in cfn_rules.evaluate(judged, config)
    ]
    spans = {name: template.span_of(name) for name in template.resources}
    found = _findings(violations, {name: (path, first) for name, (first, _) in spans.items()}, path)
    name_constructs(found, template, path)
    if via:
        for finding in found:
            finding.via = via
            finding.message += f" (nested stack of {via}, with the parameters it passes)"
    out.notices.extend(apply_suppressions(found, {path: Spans(spans, data)}, config))
    out.findings.extend(found)
    if via is None:  # a nested child counts as scanned where it is scanned on its own
        out.scanned.append(path)
        out.resources.setdefault(path, set()).update(template.resources)
    active = {Path(path).resolve()} if active is None else active
    remote = []
    for stack in judged.of_type("AWS::CloudFormation::Stack"):  # with SAM applications, once expanded
        url = stack.properties.get("TemplateURL")
        local = url if isinstance(url, str) and ":" not in url.split("/")[0] else _cdk_asset_template(stack)
        if local:
            _nested_stack(path, stack, local, template, config, out, depth, active)
        else:
            remote.append(f"{stack.logical_id} ({url if isinstance(url, str) else 'an intrinsic function'})")
    if remote:
        out.notices.append(
            f"{path}: nested stacks whose TemplateURL is not a local file are not evaluated here"
            f" (scan their templates themselves): {', '.join(remote)}"
        )


def _cdk_asset_template(stack: Any) -> str | None:
    """The local template of a CDK nested stack: its TemplateURL is built from asset parameters, and CDK
    records the file beside the parent in the resource's `aws:asset:path` metadata."""
    metadata = stack.node.get("Metadata")
    if isinstance(metadata, dict) and metadata.get("aws:asset:property") == "TemplateURL":
        asset = metadata.get("aws:asset:path")
        return asset if isinstance(asset, str) and ":" not in asset.split("/")[0] else None
    return None


def _nested_stack(
    path: str,
    stack: Any,
    url: str,
    template: Any,
    config: ScanConfig,
    out: UnitResult,
    depth: int,
    active: set[Path],
) -> None:
    """A child stack whose TemplateURL is a local file (as `aws cloudformation package` takes it, or a
    CDK asset), evaluated with the parameters the parent passes: a literal pins the child's parameter."""
    from netguard.cfn.foreach import expand_resources, has_foreach
    from netguard.cfn.loader import is_template, load_template

    name = stack.logical_id
    if depth >= MAX_STACK_DEPTH:
        out.notices.append(f"{path}: nested stack {name} is deeper than {MAX_STACK_DEPTH} levels; not evaluated")
        return
    child_path = (Path(path).parent / url).resolve()
    shown = os.path.normpath(Path(path).parent / url)  # the same form as the paths the scan was given
    line = template.span_of(name)[0]
    if child_path in active:
        out.errors.append(InputError(path, f"nested stack {name}: {url} is already being evaluated (a cycle)", line))
        return
    active = {*active, child_path}
    if not child_path.is_file():
        out.notices.append(  # not a deploy error: `aws cloudformation package` resolves it elsewhere
            f"{path}:{line}: nested stack {name}: TemplateURL {url} is not a file here; its resources are not evaluated"
        )
        return
    loaded = load_template(child_path, config.limits)
    if loaded.error or not is_template(loaded.data):
        out.errors.append(InputError(shown, loaded.error or "not a template", loaded.line))
        return
    passed = stack.properties.get("Parameters")
    parameters = loaded.data.get("Parameters")
    if isinstance(passed, dict) and isinstance(parameters, dict):
        for key, value in passed.items():
            spec = parameters.get(key)
            if isinstance(spec, dict) and isinstance(value, (str, int, float, bool)):
                spec["Default"] = value
                spec["AllowedValues"] = [value]  # the value this parent passes, and no other
            elif isinstance(spec, dict):
                spec.pop("Default", None)  # an intrinsic: any of the parameter's values
    if has_foreach(loaded.data):  # after the parent's parameters: they decide the loops
        out.errors.extend(InputError(shown, p) for p in expand_resources(loaded.data))
    _evaluate_template(shown, loaded.data, config, out, via=f"{path}:{line}", depth=depth + 1, active=active)


def _unevaluated_terraform(path: str, data: object) -> str | None:
    if (
        isinstance(data, dict)
        and "terraform_version" in data
        and ("planned_values" in data or "format_version" in data)
    ):  # Terraform plan JSON: what reaches here lacks format_version or planned_values/resource_changes/values
        return (
            "looks like `terraform show -json` output but is not a plan or state netguard can read"
            " (it needs format_version and planned_values, resource_changes or values)"
        )
    return None


def _scan_plan(path: str, data: dict, config: ScanConfig, out: UnitResult) -> UnitResult:
    """Terraform plan JSON: a plan or state (`terraform show -json`) rendered as a Module
    (terraform/plan.py) and judged by the Terraform rules; findings name plan addresses, in the plan file."""
    from netguard.terraform import rules as tf_rules
    from netguard.terraform.plan import load_plan

    loaded = load_plan(path, data, config)
    out.errors.extend(loaded.errors)
    if loaded.module is None:
        return out
    module = loaded.module
    violations = tf_rules.evaluate(module, config)
    out.errors.extend(dict.fromkeys(module.problems))
    out.findings = _findings(violations, {b.address: (b.file, b.line) for b in module.blocks}, path)
    out.notices.extend(apply_suppressions(out.findings, module.spans()))
    out.scanned.append(path)
    out.resources[path] = {name for block in module.blocks for name in (block.address, block.base)}
    return out


def scan_module(files: tuple[str, ...], config: ScanConfig) -> UnitResult:
    """One Terraform module folder: every .tf file parsed once, rendered once, the rules, suppressions."""
    from netguard.terraform import rules as tf_rules
    from netguard.terraform.loader import load_module

    out = UnitResult()
    loaded = load_module([Path(f) for f in files], config)
    out.errors.extend(loaded.errors)
    out.notices.extend(loaded.notices)
    if loaded.module is None:
        return out
    module = loaded.module
    violations = tf_rules.evaluate(module, config)
    out.errors.extend(dict.fromkeys(module.problems))  # each rule may meet the same problem
    where = {block.address: (block.file, block.line) for block in module.blocks}
    out.findings = _findings(violations, where, files[0])
    out.notices.extend(apply_suppressions(out.findings, module.spans()))
    out.scanned.extend(f for f in files if f not in loaded.failed)
    for block in module.blocks:
        out.resources.setdefault(block.file, set()).update({block.address, block.base})
    return out


def run_unit(unit: Unit, config: ScanConfig, debug: bool = False) -> UnitResult:
    """Evaluate one unit; a bug in netguard on this input is an error for its files, not a lost run."""
    try:
        if unit.kind == "cloudformation":
            return scan_template(unit.files[0], config)
        return scan_module(unit.files, config)
    except Exception as exc:
        if debug:
            raise
        return UnitResult(
            errors=[InputError(f, f"netguard failed on this file: {type(exc).__name__}: {exc}") for f in unit.files]
        )


def units_of(cfn: list[Path], terraform: list[Path]) -> list[Unit]:
    """Templates one by one; Terraform files grouped by folder, since a module spans its folder."""
    units = [Unit("cloudformation", (str(p),)) for p in cfn]
    folders: dict[Path, list[str]] = {}
    for path in terraform:
        folders.setdefault(path.parent, []).append(str(path))
    units.extend(Unit("terraform", tuple(files)) for files in folders.values())
    return units


def scan(
    paths: list[str], config: ScanConfig, debug: bool = False, jobs: int = 1, selection: Selection | None = None
) -> ScanResult:
    """Scan paths; never raises for bad input: each problem becomes an error naming the file.

    selection (scan/selection.py) says which controls are reported and at which severity; without it,
    the config's `controls:` settings alone decide."""
    result = ScanResult(config=config.source, docs_url=config.docs_url)
    found = discover(paths)
    result.errors.extend(found.errors)
    result.notices.extend(found.notices)
    used = Path(config.source).resolve() if config.source else None
    for path in found.cfn:
        if path.name == CONFIG_NAME and path.resolve() != used:
            result.notices.append(f"{path}: ignored as a config (only --config or the repository root's applies)")
    units = units_of(found.cfn, found.terraform)
    seen_files: set[str] = set()
    for unit_result in _run_all(units, config, debug, jobs):
        for finding in unit_result.findings:
            result.add(finding)
        result.errors.extend(unit_result.errors)
        result.notices.extend(n for n in unit_result.notices if n not in result.notices)
        result.files.extend(f for f in unit_result.scanned if f not in seen_files)
        seen_files.update(unit_result.scanned)
    result.apply_selection(selection or select(settings=dict(config.controls)))
    result.apply_threshold(config.severity_threshold)
    result.sort()
    return result


PARALLEL_THRESHOLD = 200  # units; below it, starting workers costs more than it saves


def _run_all(units: list[Unit], config: ScanConfig, debug: bool, jobs: int) -> Iterator[UnitResult]:
    progress = Progress(len(units))
    if jobs <= 1 or len(units) < PARALLEL_THRESHOLD or debug:
        for unit in units:
            yield run_unit(unit, config, debug)
            progress.advance(1)
        progress.close()
        return
    import multiprocessing

    chunks = [units[i :: jobs * 4] for i in range(jobs * 4)]
    pending = {}
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        for chunk in chunks:
            if chunk:
                pending[pool.submit(_run_chunk, chunk, config)] = chunk
        for future, chunk in pending.items():
            try:
                results = future.result()
            except BrokenProcessPool:
                # A worker died (killed, out of memory): its files are errors, never silently passed.
                results = [
                    UnitResult(errors=[InputError(f, "the worker process evaluating this file died") for f in u.files])
                    for u in chunk
                ]
            yield from results
            progress.advance(len(chunk))
    progress.close()


def _run_chunk(units: list[Unit], config: ScanConfig) -> list[UnitResult]:
    return [run_unit(unit, config) for unit in units]


class Progress:
    """A one-line progress report on stderr, only on a terminal and only once a run takes a while."""

    DELAY = 2.0

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.monotonic()
        self.stream = sys.stderr
        self.enabled = self.stream.isatty() and not os.environ.get("CI")
        self.shown = False

    def advance(self, count: int) -> None:
        self.done += count
        elapsed = time.monotonic() - self.start
        if self.enabled and elapsed >= self.DELAY:
            rate = self.done / elapsed if elapsed else 0.0
            self.stream.write(f"\rnetguard: {self.done}/{self.total} files, {rate:.0f} files/s ")
            self.stream.flush()
            self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
