"""`netguard scan`: discover files, run the engines in-process, merge their findings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from netguard.catalog import load_catalog
from netguard.cfn.loader import is_template, load_template, reference_problems, structure_problems
from netguard.config import DEFAULT_CONFIG, Limits, ScanConfig, find_config, load_config, set_active_config
from netguard.errors import InputError
from netguard.safety import read_vetted
from netguard.scan.discover import discover
from netguard.scan.findings import ScanResult
from netguard.scan.suppress import apply_suppressions

ENGINES = ("checkov", "cfn-lint")


def vet_terraform(path: Path, limits: Limits) -> str | None:
    """Size, encoding and nesting of a .tf file, before Checkov's HCL parser sees it."""
    raw, problem = read_vetted(path, limits)
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


def scan(
    paths: list[str],
    config: ScanConfig,
    engines: tuple[str, ...] = ENGINES,
    debug: bool = False,
    jobs: int = 1,
) -> ScanResult:
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
    _engines_into(result, templates, terraform, engines, debug, jobs)
    apply_suppressions(result, {str(path): data for path, data in templates})
    result.files = [str(p) for p, _ in templates] + [str(p) for p in terraform]
    result.apply_threshold(config.severity_threshold)
    result.sort()
    return result


PARALLEL_THRESHOLD = 60  # files; below it, starting workers costs more than it saves
_work: dict[str, Any] = {}  # what forked workers inherit: the parsed templates and the settings


def _run_chunk(
    templates: list[tuple[Path, dict]], terraform: list[Path], engines: tuple[str, ...], debug: bool
) -> ScanResult:
    """Both engines on one share of the files."""
    chunk = ScanResult()
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
            chunk,
            debug=debug,
            expect=expect,
            parsed={str(p): data for p, data in templates},
        )
        run_checkov("terraform", terraform, chunk, debug=debug)
    if "cfn-lint" in engines:
        from netguard.scan.cfnlint_engine import run_cfnlint

        run_cfnlint(templates, chunk, debug=debug)
    return chunk


def _worker(share: tuple[list[int], list[int]]) -> tuple[list[Any], list[InputError], int]:
    if "checkov" in _work["engines"]:
        # Checkov forks its own pool for Terraform; a pool worker may not have children, and the
        # cores are already busy with netguard's workers.
        from checkov.common.models.enums import ParallelizationType
        from checkov.common.parallelizer.parallel_runner import parallel_runner

        parallel_runner.type = ParallelizationType.NONE
    template_ids, terraform_ids = share
    templates = [_work["templates"][i] for i in template_ids]
    terraform = [_work["terraform"][i] for i in terraform_ids]
    chunk = _run_chunk(templates, terraform, _work["engines"], _work["debug"])
    return chunk.findings, chunk.errors, len(templates) + len(terraform)


def _shares(
    templates: list[tuple[Path, dict]], terraform: list[Path], pieces: int
) -> list[tuple[list[int], list[int]]]:
    """Split the work; Terraform files stay with their module folder (references cross files)."""
    shares: list[tuple[list[int], list[int]]] = [([], []) for _ in range(pieces)]
    for index in range(len(templates)):
        shares[index % pieces][0].append(index)
    folders: dict[Path, list[int]] = {}
    for index, path in enumerate(terraform):
        folders.setdefault(path.parent, []).append(index)
    for n, indexes in enumerate(folders.values()):
        shares[n % pieces][1].extend(indexes)
    return [share for share in shares if share[0] or share[1]]


def _prime_engines(engines: tuple[str, ...]) -> None:
    """Import the engines and build the pack once, before forking, so workers start warm."""
    if "checkov" in engines:
        import checkov.cloudformation.runner
        import checkov.terraform.runner  # noqa: F401

        from netguard.scan.checkov_engine import load_checks

        load_checks()
    if "cfn-lint" in engines:
        from netguard.scan.cfnlint_engine import _rules_and_config

        _rules_and_config()


def _engines_into(
    result: ScanResult,
    templates: list[tuple[Path, dict]],
    terraform: list[Path],
    engines: tuple[str, ...],
    debug: bool,
    jobs: int,
) -> None:
    total = len(templates) + len(terraform)
    if jobs <= 1 or total < PARALLEL_THRESHOLD or debug:
        chunk = _run_chunk(templates, terraform, engines, debug)
        for finding in chunk.findings:
            result.add(finding)
        result.errors.extend(chunk.errors)
        return
    import multiprocessing

    _prime_engines(engines)
    _work.update(templates=templates, terraform=terraform, engines=engines, debug=debug)
    shares = _shares(templates, terraform, max(jobs * 4, 1))
    progress = Progress(total)
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        for findings, errors, done in pool.imap_unordered(_worker, shares):
            for finding in findings:
                result.add(finding)
            result.errors.extend(errors)
            progress.advance(done)
    progress.close()
    _work.clear()


class Progress:
    """A one-line progress report on stderr, only on a terminal and only once a run takes a while."""

    DELAY = 2.0

    def __init__(self, total: int) -> None:
        import sys
        import time

        self.total, self.done, self.start = total, 0, time.monotonic()
        self.stream = sys.stderr
        self.enabled = self.stream.isatty()
        self.shown = False

    def advance(self, count: int) -> None:
        import time

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
