"""The netguard command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from netguard import __version__
from netguard.errors import NetguardError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netguard", description="Policy-as-code guardrails for AWS networks.")
    parser.add_argument("--version", action="version", version=f"netguard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    scan = sub.add_parser("scan", help="scan CloudFormation and Terraform for risky network configuration")
    scan.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to scan")
    scan.add_argument("--format", "-f", choices=("text", "json", "sarif", "junit"), default="text")
    scan.add_argument("--output", "-o", metavar="FILE", help="write the report here instead of stdout")
    scan.add_argument("--config", metavar="FILE", help="configuration file (default: nearest .netguard.yaml)")
    scan.add_argument(
        "--engine",
        choices=("all", "checkov", "cfn-lint"),
        default="all",
        help="which engine to run on CloudFormation (Terraform always uses checkov)",
    )
    scan.add_argument("--debug", action="store_true", help="show engine logs and tracebacks")
    return parser


def _scan(args: argparse.Namespace) -> int:
    from netguard.scan.report import render
    from netguard.scan.run import ENGINES, resolve_config, scan

    config = resolve_config(args.paths, args.config)
    engines = ENGINES if args.engine == "all" else (args.engine,)
    result = scan(args.paths, config, engines=engines, debug=args.debug)
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
            print(f"netguard: error: {error.file}: {error.message}", file=sys.stderr)
    return result.exit_code()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "scan":
            return _scan(args)
    except NetguardError as exc:
        print(f"netguard: error: {exc.file}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
