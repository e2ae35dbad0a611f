"""Bounds on the CloudTrail files `policy simulate` and `policy replay` read, and their options.

Kept free of heavy imports: the command line builds its parser from here for every command.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any


def size_text(size: int) -> str:
    return f"{size / 1048576:.1f} MiB" if size >= 1048576 else f"{size} bytes"


MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds on one CloudTrail file, so that a hostile file is an error naming it, not a crash or a
    machine's worth of memory. Each is an option of `policy simulate` and `policy replay`."""

    max_file_bytes: int = 256 * MiB  # as stored, and again once inflated (a gzip bomb stops here)
    max_records: int = 500_000  # records in one file; CloudTrail delivers files of minutes of calls
    max_json_values: int = 20_000_000  # values in one file, counted before parsing (memory: ~90 B each)
    max_depth: int = 32  # nesting of one record; real ones stay under 15
    max_record_errors: int = 100  # errors listed per file; the rest are counted in one closing error


LIMITS = Limits()

# (option, Limits field, help) for the commands that read CloudTrail files.
LIMIT_OPTIONS = (
    ("--max-file-bytes", "max_file_bytes", "bytes per CloudTrail file, as stored and once inflated"),
    ("--max-records", "max_records", "records per CloudTrail file"),
    ("--max-json-values", "max_json_values", "JSON values per CloudTrail file, counted before parsing"),
    ("--max-depth", "max_depth", "nesting depth of one record"),
    ("--max-record-errors", "max_record_errors", "record errors listed per file (the rest are counted)"),
)


def add_limit_options(parser: Any) -> None:
    """The limits as options of an argparse (sub)parser, each with its default in the help."""
    for option, name, text in LIMIT_OPTIONS:
        default = getattr(LIMITS, name)
        shown = f"{default} = {size_text(default)}" if name == "max_file_bytes" else f"{default}"
        parser.add_argument(
            option, type=positive_int, default=default, metavar="N", dest=name, help=f"{text} (default {shown})"
        )


def limits_from(args: Any) -> Limits:
    return Limits(**{name: getattr(args, name, getattr(LIMITS, name)) for _, name, _ in LIMIT_OPTIONS})


def positive_int(text: str) -> int:
    """An argparse type for counts and bounds (--jobs, --max-records): 0 or a negative number is a
    typo, not a request, so it is refused with the value rather than quietly taken as 1 or as none."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text[:40]!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value
