"""Run Checkov in-process with only netguard's checks, and turn its report into findings."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from netguard.catalog import control_for_engine_id, load_catalog
from netguard.errors import InputError
from netguard.scan.findings import Finding, ScanResult

os.environ.setdefault("BC_SKIP_MAPPING", "TRUE")  # never ask Bridgecrew's platform for mappings
os.environ.setdefault("CHECKOV_SKIP_PACKAGE_REGISTRY", "TRUE")
ENGINE = "checkov"
_loaded = False


def _keep_conditional_resources() -> None:
    """Stop Checkov from dropping CloudFormation resources whose Condition is false by default.

    Checkov evaluates conditions with the parameters' default values and leaves out every resource
    whose condition comes out false, so a risky resource that is off by default is never checked,
    although the stack can be deployed with it on. netguard's rules reason about every scenario
    themselves, so within netguard all resources stay in.
    """
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


def load_checks(frameworks: set[str] | None = None) -> list[str]:
    """Register the pack's Checkov checks for the given frameworks (once each); returns their ids."""
    global _loaded
    from netguard.engines import checkov_adapter

    wanted = frameworks or {"cloudformation", "terraform"}
    if "cloudformation" in wanted:
        _keep_conditional_resources()
    if not _loaded:
        import importlib
        import pkgutil

        import netguard.checks.checkov as pack

        checkov_adapter.FRAMEWORKS = set(wanted)
        for module in pkgutil.iter_modules(pack.__path__):
            importlib.import_module(f"{pack.__name__}.{module.name}")
        _loaded = True
    for control in load_catalog().values():
        checkov_adapter.register(control.id, wanted)
    return sorted({c.engines["checkov"] for c in load_catalog().values()})


@contextlib.contextmanager
def _quiet(debug: bool) -> Iterator[None]:
    """Checkov logs through the root logger; keep it off the user's terminal unless --debug."""
    if debug:
        yield
        return
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(previous)


def _filter(framework: str, check_ids: list[str]) -> Any:
    from checkov.runner_filter import RunnerFilter

    return RunnerFilter(framework=[framework], checks=check_ids, show_progress_bar=False)


def _records(framework: str, report: Any) -> Iterator[Any]:
    """Failed checks, and the checks Checkov skipped for a suppression comment.

    netguard applies suppressions itself, the same for both engines, so a skipped CloudFormation
    check still needs its verdict: netguard's rules give it (Checkov's own skips carry none).
    """
    yield from report.failed_checks
    if framework != "cloudformation":
        return
    from netguard.engines.checkov_adapter import explain

    for record in report.skipped_checks:
        control = control_for_engine_id("checkov", record.check_id)
        if control and explain(record.file_abs_path, control.id, _resource_name(framework, record.resource)):
            yield record


def _resource_name(framework: str, resource: str) -> str:
    if framework == "cloudformation":
        return resource.rsplit(".", 1)[-1]
    type_name = resource.split(".", 1)[0]
    if type_name in {"aws_iam_policy_document"} and not resource.startswith("data."):
        return f"data.{resource}"
    return resource


def _to_findings(framework: str, report: Any, result: ScanResult, display: dict[str, str]) -> set[str]:
    """Add the report's findings; returns the files Checkov produced any result for."""
    evaluated: set[str] = set()
    for record in report.passed_checks:
        evaluated.add(os.path.realpath(record.file_abs_path))
    for record in _records(framework, report):
        real = os.path.realpath(record.file_abs_path)
        evaluated.add(real)
        control = control_for_engine_id("checkov", record.check_id)
        if control is None:
            continue
        details = [d for d in (record.details or []) if isinstance(d, str)]
        resource = _resource_name(framework, record.resource)
        if not details and framework == "cloudformation":
            from netguard.engines.checkov_adapter import explain

            details = [m for m in (explain(record.file_abs_path, control.id, resource),) if m]
        result.add(
            Finding(
                control=control.id,
                file=display.get(real, record.file_abs_path),
                resource=resource,
                line=int(record.file_line_range[0]) if record.file_line_range else 0,
                severity=control.severity,
                message=details[0] if details else f"{record.resource}: {control.title}",
                engines=[ENGINE],
            )
        )
    return evaluated


def _run(framework: str, files: list[str], check_ids: list[str]) -> Any:
    if framework == "cloudformation":
        from checkov.cloudformation.runner import Runner
    else:
        from checkov.terraform.runner import Runner
    runner_filter = _filter(framework, check_ids)
    # Suppressions are netguard's job (one layer for both engines), so Checkov collects no skip comments.
    report = Runner().run(root_folder=None, files=files, runner_filter=runner_filter, collect_skip_comments=False)
    return report[0] if isinstance(report, list) else report


def _run_prepared(templates: dict[str, dict], check_ids: list[str]) -> Any:
    """Checkov's CloudFormation runner on templates netguard already parsed.

    The runner builds definitions, context and a graph only when it has none; handing it netguard's
    parse skips its own parse and graph (the graph deep-copies every resource and dominates large
    runs). The pack has no graph checks, and netguard's rules reason about conditions themselves.
    """
    from checkov.cloudformation.parser.cfn_keywords import TemplateSections
    from checkov.cloudformation.runner import Runner

    from netguard.cfn.lines import resource_lines

    runner = Runner()
    runner.definitions, runner.definitions_raw, runner.context, runner.breadcrumbs = {}, {}, {}, {}
    for path, data in templates.items():
        resources = data.get("Resources") if isinstance(data.get("Resources"), dict) else {}
        text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
        spans = resource_lines(text, list(resources))
        runner.definitions[path] = data
        runner.context[path] = {
            TemplateSections.RESOURCES: {
                name: {"start_line": first, "end_line": last, "code_lines": [(first, "")], "skipped_checks": []}
                for name, (first, last) in spans.items()
            }
        }
    report = runner.run(root_folder=None, files=list(templates), runner_filter=_filter("cloudformation", check_ids))
    return report[0] if isinstance(report, list) else report


def run_checkov(
    framework: str,
    files: list[Path],
    result: ScanResult,
    *,
    debug: bool = False,
    expect: set[str] | None = None,
    parsed: dict[str, dict] | None = None,
) -> None:
    """Scan files with Checkov. A crash isolates the failing file; every file Checkov skips is an error.

    expect: the files that must produce at least one result (templates with resources the pack checks).
    """
    if not files:
        return
    check_ids = load_checks({framework})
    display = {os.path.realpath(p): str(p) for p in files}
    batches = [[str(p) for p in files]]
    while batches:
        batch = batches.pop()
        try:
            with _quiet(debug):
                if parsed is not None and framework == "cloudformation":
                    report = _run_prepared({os.path.abspath(f): parsed[f] for f in batch}, check_ids)
                else:
                    report = _run(framework, batch, check_ids)
        except Exception as exc:
            if debug:
                raise
            if len(batch) > 1:
                batches.extend([[f] for f in batch])
                continue
            result.errors.append(InputError(batch[0], f"checkov failed on this file: {type(exc).__name__}: {exc}"))
            continue
        evaluated = _to_findings(framework, report, result, display)
        for failed in report.parsing_errors:
            result.errors.append(
                InputError(display.get(os.path.realpath(failed), failed), _parse_reason(framework, failed))
            )
        parse_failed = {os.path.realpath(p) for p in report.parsing_errors}
        for path in batch:
            real = os.path.realpath(path)
            if expect is not None and real in expect and real not in evaluated and real not in parse_failed:
                from netguard.engines.checkov_adapter import failures

                why = failures.pop(real, None)
                message = (
                    f"checkov failed on this file: {why}"
                    if why
                    else ("checkov did not evaluate this template; netguard cannot vouch for it")
                )
                result.errors.append(InputError(path, message))


def _parse_reason(framework: str, path: str) -> str:
    if framework == "terraform":
        try:
            import hcl2

            with open(path, encoding="utf-8") as handle:
                hcl2.load(handle)
        except Exception as exc:
            return f"invalid HCL: {' '.join(str(exc).split())[:300]}"
    return f"checkov could not parse this {framework} file"
