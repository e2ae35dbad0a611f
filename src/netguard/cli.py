"""The netguard command line: the parser and the error handling every command shares; each command's
options and run live beside its code (scan/command.py, policy/command.py, org/command.py)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from netguard import __version__
from netguard.errors import NetguardError, printable
from netguard.suggest import did_you_mean


class Parser(argparse.ArgumentParser):
    """argparse with a "did you mean" for a mistyped flag: `--chek` names --check rather than only
    failing. Subcommand parsers are of this class too, so the hint covers every command's flags."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # `--out` must not quietly mean --output-something
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            flags = sorted(_option_strings(self))
            hints = [
                f"{word}: {hint}"
                for word in message.split(":", 1)[1].split()
                if word.startswith("--") and (hint := did_you_mean(word.split("=", 1)[0], flags))
            ]
            if hints:
                message += " (" + "; ".join(hints) + ")"
        super().error(message)


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every long option of parser and of the commands below it."""
    found: set[str] = set()
    for action in parser._actions:
        found.update(o for o in action.option_strings if o.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found |= _option_strings(child)
    return found


def _parser() -> argparse.ArgumentParser:
    from netguard import controls as controls_command
    from netguard.audit import command as audit_command
    from netguard.org import command as org_command
    from netguard.policy import command as policy_command
    from netguard.scan import command as scan_command

    parser = Parser(prog="netguard", description="Policy-as-code guardrails for AWS networks.")
    parser.add_argument("--version", action="version", version=f"netguard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    scan_command.add_parser(sub)
    controls_command.add_parser(sub)
    policy_command.add_parser(sub)
    org_command.add_parser(sub)
    audit_command.add_parser(sub)
    return parser


def smuggled_option(argv: Sequence[str]) -> str | None:
    """An argument before `--` that looks like an option but names an existing file.

    pre-commit and xargs append file names after the options; a committed file named
    `--create-baseline=x.yaml` would otherwise become an option and change what the run does.
    """
    for arg in argv:
        if arg == "--":
            return None
        if arg.startswith("-") and len(arg) > 1 and os.path.lexists(arg):
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    smuggled = smuggled_option(argv)
    if smuggled is not None:
        print(
            f"netguard: error: {printable(smuggled)}: a file is named like an option; put `--` before file"
            " names (the pre-commit hooks do)",
            file=sys.stderr,
        )
        return 2
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except NetguardError as exc:
        print(printable(f"netguard: error: {exc.file}: {exc.message}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if getattr(args, "debug", False):
            raise
        from netguard.org.aws import user_error

        known = user_error(exc)  # a botocore error (credentials, network, access) is the user's to fix
        if known is not None:
            print(printable(f"netguard: error: {known.file}: {known.message}"), file=sys.stderr)
            return 2
        print(
            printable(f"netguard: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)"),
            file=sys.stderr,
        )
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
