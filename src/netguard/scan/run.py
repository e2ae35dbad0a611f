"""`netguard scan`: discover files, run the engines in-process, merge their findings."""

from __future__ import annotations

import os
from pathlib import Path

from netguard.catalog import load_catalog
from netguard.cfn.loader import is_template, load_template, reference_problems, structure_problems
from netguard.config import DEFAULT_CONFIG, Limits, ScanConfig, find_config, load_config, set_active_config
from netguard.errors import InputError
from netguard.safety import check_bytes
from netguard.scan.discover import discover
from netguard.scan.findings import ScanResult
from netguard.scan.suppress import apply_suppressions

ENGINES = ("checkov", "cfn-lint")


def vet_terraform(path: Path, limits: Limits) -> str | None:
    """Size, encoding and nesting of a .tf file, before Checkov's HCL parser sees it."""
    try:
        size = path.stat().st_size
        if size > limits.max_file_mb * 1024 * 1024:
            return f"file is {size / 1048576:.1f} MB, over the limit of {limits.max_file_mb:g} MB (limits.max_file_mb)"
        raw = path.read_bytes()
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    problem = check_bytes(raw, limits)
    if problem:
        return problem
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 (byte {exc.start})"
    return None


def resolve_config(paths: list[str], explicit: str | None) -> ScanConfig:
    """--config if given, else the nearest .netguard.yaml above the first scanned path."""
    if explicit:
        return load_config(Path(explicit))
    for raw in paths:
        if Path(raw).exists():
            found = find_config(Path(raw))
            return load_config(found) if found else DEFAULT_CONFIG
    return DEFAULT_CONFIG


def _checked_types() -> set[str]:
    return {t for c in load_catalog().values() for t in c.resource_types("cloudformation")}


def scan(paths: list[str], config: ScanConfig, engines: tuple[str, ...] = ENGINES, debug: bool = False) -> ScanResult:
    """Scan paths; never raises for bad input: each problem becomes an error naming the file."""
    set_active_config(config)
    result = ScanResult()
    found = discover(paths)
    result.errors.extend(found.errors)
    templates: list[tuple[Path, dict]] = []
    for path in found.cfn:
        loaded = load_template(path, config.limits)
        if loaded.error:
            result.errors.append(InputError(str(path), loaded.error, loaded.line))
        elif is_template(loaded.data):
            broken = structure_problems(loaded.data)
            result.errors.extend(InputError(str(path), problem) for problem in broken)
            if not broken:
                result.errors.extend(InputError(str(path), problem) for problem in reference_problems(loaded.data))
                templates.append((path, loaded.data))
    terraform = []
    for path in found.terraform:
        problem = vet_terraform(path, config.limits)
        if problem:
            result.errors.append(InputError(str(path), problem))
        else:
            terraform.append(path)
    checked = _checked_types()
    expect = {
        os.path.realpath(p)
        for p, data in templates
        if isinstance(data.get("Resources"), dict)
        and any(isinstance(r, dict) and r.get("Type") in checked for r in data["Resources"].values())
    }
    if "checkov" in engines:
        from netguard.engines.checkov_adapter import preload_template
        from netguard.scan.checkov_engine import run_checkov

        for path, data in templates:  # parsed once: the Checkov checks reuse it instead of parsing again
            preload_template(str(path), data)

        run_checkov(
            "cloudformation",
            [p for p, _ in templates],
            result,
            debug=debug,
            expect=expect,
            parsed={str(p): data for p, data in templates},
        )
        run_checkov("terraform", terraform, result, debug=debug)
    if "cfn-lint" in engines:
        from netguard.scan.cfnlint_engine import run_cfnlint

        run_cfnlint(templates, result, debug=debug)
    apply_suppressions(result, {str(path): data for path, data in templates})
    result.files = [str(p) for p, _ in templates] + [str(p) for p in terraform]
    result.files_scanned = len(result.files)
    result.apply_threshold(config.severity_threshold)
    result.sort()
    return result
