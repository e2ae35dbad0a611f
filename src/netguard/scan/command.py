"""`netguard scan`: its options and its run."""

from __future__ import annotations

import argparse
import os
import sys

from netguard.errors import NetguardError, printable


def add_parser(sub: argparse._SubParsersAction) -> None:
    scan = sub.add_parser("scan", help="scan CloudFormation and Terraform for risky network configuration")
    scan.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to scan")
    scan.add_argument("--format", "-f", choices=("text", "json", "sarif", "junit", "github"), default="text")
    scan.add_argument("--output", "-o", metavar="FILE", help="write the report here instead of stdout")
    scan.add_argument("--config", metavar="FILE", help="configuration file (default: nearest .netguard.yaml)")
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
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="worker processes for large runs (default: the number of cores)",
    )
    scan.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    scan.add_argument("--engine", help=argparse.SUPPRESS)  # removed: refused with an explanation

    scan.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Scan the paths; exit 0 clean, 1 findings, 2 errors."""
    from pathlib import Path

    from netguard.scan.baseline import apply_baseline, write_baseline
    from netguard.scan.report import render
    from netguard.scan.run import resolve_config, scan

    if args.create_baseline and os.environ.get("PRE_COMMIT"):
        raise NetguardError("--create-baseline", "refused inside a pre-commit hook: create baselines by hand")
    if args.engine is not None:
        raise NetguardError(
            "--engine",
            "removed: netguard evaluates every file with its own rules. To check the Checkov or cfn-lint"
            " plug-in, run the plain engine with the pack (README, 'Using the pack in Checkov or cfn-lint')",
        )
    paths = args.paths
    if args.tf_module_dirs:
        paths = list(dict.fromkeys(str(Path(p).parent) if p.endswith(".tf") else p for p in paths))
    config = resolve_config(args.config)
    result = scan(paths, config, debug=args.debug, jobs=max(args.jobs, 1))
    if args.baseline:
        apply_baseline(result, Path(args.baseline))
    if args.create_baseline:
        count = write_baseline(result, Path(args.create_baseline))
        print(f"netguard: wrote {count} findings to {args.create_baseline}", file=sys.stderr)
        for finding in result.findings:
            finding.baselined = True
    text = render(result, args.format)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise NetguardError(args.output, f"cannot write report: {exc.strerror}") from None
    else:
        sys.stdout.write(text)
    if result.errors and args.format != "text":
        for error in result.errors:
            print(printable(f"netguard: error: {error.file}: {error.message}"), file=sys.stderr)
    return result.exit_code()
