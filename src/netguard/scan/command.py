"""`netguard scan`: its options and its run."""

from __future__ import annotations

import argparse
import os
import sys

from netguard.errors import NetguardError, printable


def positive_int(text: str) -> int:
    """An argparse type for counts such as --jobs: 0 or a negative number is a typo, not a request."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    from netguard.scan.report import FORMATS

    scan = sub.add_parser(
        "scan",
        help="scan CloudFormation and Terraform for risky network configuration",
        description="Exit codes: 0 no failing findings, 1 failing findings, 2 errors (a file not evaluated, bad "
        "arguments or config).",
    )
    scan.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to scan")
    scan.add_argument("--format", "-f", choices=FORMATS, default="text", help="the report on stdout (default text)")
    scan.add_argument(
        "--output",
        "-o",
        action="append",
        default=[],
        metavar="[FORMAT=]FILE",
        help="write a report to FILE: FORMAT=FILE (repeatable, e.g. -o sarif=scan.sarif -o junit=scan.xml), or FILE "
        "for the --format report; the terminal still gets the text report",
    )
    scan.add_argument(
        "--check",
        action="append",
        metavar="IDS",
        help="run only these controls: ids (NG-VPC-001, CKV_NG_VPC_001, E9501), globs (NG-VPC-*) or a severity "
        "(HIGH: high and above); comma-separated or repeated",
    )
    scan.add_argument(
        "--skip-check",
        action="append",
        metavar="IDS",
        help="leave these controls out: ids, globs or a severity (LOW: low and below); wins over --check",
    )
    scan.add_argument("--quiet", "-q", action="store_true", help="terminal: only failing findings, errors, summary")
    scan.add_argument("--no-color", action="store_true", help="no colour on a terminal (also: NO_COLOR set)")
    scan.add_argument(
        "--config", metavar="FILE", help="configuration file (default: the repository root's .netguard.yaml)"
    )
    scan.add_argument("--baseline", metavar="FILE", help="findings listed here are reported but do not fail")
    scan.add_argument("--create-baseline", metavar="FILE", help="write the current findings as a baseline")
    scan.add_argument(
        "--tf-module-dirs",
        action="store_true",
        help="scan the folder of each .tf file given (its module), as the pre-commit hook does",
    )
    scan.add_argument(
        "--jobs",
        "-j",
        type=positive_int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="worker processes for large runs (default: the number of cores)",
    )
    scan.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    scan.add_argument("--engine", help=argparse.SUPPRESS)  # removed: refused with an explanation

    scan.set_defaults(run=run)


def outputs(values: list[str], fmt: str) -> list[tuple[str, str]]:
    """(format, file) for each --output: FORMAT=FILE, or a bare FILE for the --format report."""
    from netguard.scan.report import FORMATS

    pairs = []
    for value in values:
        name, sep, path = value.partition("=")
        if sep and name in FORMATS:
            if not path:
                raise NetguardError("--output", f"{value!r}: no file after {name}=")
            pairs.append((name, path))
        elif sep and name.isalpha() and "/" not in name:
            raise NetguardError("--output", f"{value!r}: unknown format {name!r}; use one of {', '.join(FORMATS)}")
        else:
            pairs.append((fmt, value))
    files = [path for _, path in pairs]
    repeated = sorted({path for path in files if files.count(path) > 1})
    if repeated:
        raise NetguardError("--output", f"two reports to the same file: {', '.join(repeated)}")
    return pairs


def use_color(args: argparse.Namespace) -> bool:
    """Colour only for a person at a terminal: never into files or pipes, never with NO_COLOR or --no-color."""
    return (
        sys.stdout.isatty()
        and not args.no_color
        and not os.environ.get("NO_COLOR")
        and os.environ.get("TERM") != "dumb"
    )


def run(args: argparse.Namespace) -> int:
    """Scan the paths; exit 0 clean, 1 findings, 2 errors."""
    from pathlib import Path

    from netguard.scan.baseline import apply_baseline, write_baseline
    from netguard.scan.report import render
    from netguard.scan.run import resolve_config, scan
    from netguard.scan.selection import select

    if args.create_baseline and os.environ.get("PRE_COMMIT"):
        raise NetguardError("--create-baseline", "refused inside a pre-commit hook: create baselines by hand")
    if args.engine is not None:
        raise NetguardError(
            "--engine",
            "removed: netguard evaluates every file with its own rules. To check the Checkov or cfn-lint"
            " plug-in, run the plain engine with the pack (README, 'Using the pack in Checkov or cfn-lint')",
        )
    reports = outputs(args.output, args.format)
    paths = args.paths
    if args.tf_module_dirs:
        paths = list(dict.fromkeys(str(Path(p).parent) if p.endswith(".tf") else p for p in paths))
    config = resolve_config(args.config, paths)
    selection = select(args.check, args.skip_check, dict(config.controls))
    result = scan(paths, config, debug=args.debug, jobs=args.jobs, selection=selection)
    if args.baseline:
        apply_baseline(result, Path(args.baseline))
    if args.create_baseline:
        count = write_baseline(result, Path(args.create_baseline))
        print(f"netguard: wrote {count} findings to {args.create_baseline}", file=sys.stderr)
        for finding in result.findings:
            finding.baselined = True
    for fmt, path in reports:
        try:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(render(result, fmt))
        except OSError as exc:
            raise NetguardError(path, f"cannot write report: {exc.strerror}") from None
    # stdout gets the --format report, or the text report when that went to a file: never silence
    terminal = "text" if any(path for fmt, path in reports if fmt == args.format) else args.format
    sys.stdout.write(render(result, terminal, color=use_color(args), quiet=args.quiet))
    if result.errors and terminal != "text":
        for error in result.errors:
            print(printable(f"netguard: error: {error.file}: {error.message}"), file=sys.stderr)
    return result.exit_code()
