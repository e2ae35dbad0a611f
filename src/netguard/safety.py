"""Cheap checks that run before any parser sees a file, so hostile input becomes an error, not a crash.

libyaml's composer is recursive C: a few hundred thousand nested brackets overflow its stack and kill
the process, taking every other file of the run with it. YAML aliases can expand a small file into
billions of nodes. These checks look at the bytes (and, for aliases, the event stream) first.
"""

from __future__ import annotations

import os
import re
import stat
from array import array
from itertools import accumulate, islice
from operator import sub
from pathlib import Path

import yaml

from netguard.config import Limits

_OPENERS = b"[{("
_CLOSERS = b"]})"
_SIGNS = bytes.maketrans(_OPENERS + _CLOSERS, b"\x01\x01\x01\xff\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _OPENERS + _CLOSERS)
_INDENT = re.compile(rb"^[ \t]*", re.M)


def read_vetted(path: Path, limits: Limits) -> tuple[bytes | None, str | None]:
    """A file's bytes, or why it must not be parsed.

    Only regular files are read (a FIFO would block forever, a link to /dev/zero never end), opened
    without blocking and checked on the open descriptor, and the size limit holds while reading, not
    only by what stat said a moment before.
    """
    cap = int(limits.max_file_mb * 1024 * 1024)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        return None, f"cannot read file: {exc.strerror or exc}"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, f"not a regular file ({_kind(info.st_mode)}); only regular files are read"
        if info.st_size > cap:
            return None, _too_big(info.st_size, limits)
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > cap:
                return None, _too_big(total, limits)
            chunks.append(chunk)
        raw = b"".join(chunks)
    except OSError as exc:
        return None, f"cannot read file: {exc.strerror or exc}"
    finally:
        os.close(fd)
    problem = check_bytes(raw, limits)
    return (None, problem) if problem else (raw, None)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _too_big(size: int, limits: Limits) -> str:
    return f"file is {size / 1048576:.1f} MB, over the limit of {limits.max_file_mb:g} MB (limits.max_file_mb)"


def check_bytes(raw: bytes, limits: Limits) -> str | None:
    """Why these bytes must not be parsed (size, encoding, binary, nesting), or None."""
    if len(raw) > limits.max_file_mb * 1024 * 1024:
        return _too_big(len(raw), limits)
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "UTF-16 encoded (byte order mark found); templates must be UTF-8"
    nul = raw.find(b"\x00")
    if nul != -1:
        return f"binary data (NUL byte at offset {nul}), not a text template"
    return check_depth(raw, limits.max_depth)


def check_depth(raw: bytes, max_depth: int) -> str | None:
    """Bracket nesting and indentation depth, counted without parsing (strings are not excluded)."""
    brackets = raw.translate(_SIGNS, _NOT_BRACKETS)  # 1 per opener, -1 (0xff) per closer
    if len(brackets) > 2 * max_depth:
        # Depth after each bracket, a stray closer never going below zero: the prefix sum minus its
        # running minimum. Computed in C (accumulate, map) so a 30 MB file costs milliseconds.
        sums = list(accumulate(array("b", brackets)))
        floors = islice(accumulate(sums, min, initial=0), 1, None)
        if max(map(sub, sums, floors), default=0) > max_depth:
            return f"nested more than {max_depth} levels deep (limits.max_depth)"
    if raw.lstrip()[:1] in (b"{", b"["):
        return None  # JSON or flow-style YAML: indentation does not nest, the brackets above do
    deep_line = re.search(rb"^[ \t]{%d}" % (max_depth * 8 + 1), raw, re.M)
    if deep_line:
        widest = len(_INDENT.match(raw, deep_line.start()).group())
        return f"indented {widest} columns deep, over {max_depth * 8} (limits.max_depth)"
    return None


def check_aliases(text: str, limits: Limits) -> str | None:
    """Refuse YAML whose aliases expand past limits.max_yaml_nodes (a "billion laughs" file)."""
    if "&" not in text or "*" not in text:
        return None
    weights: dict[str, int] = {}
    stack: list[list] = []  # [anchor, weight] per open collection
    total = 0
    try:
        for event in yaml.parse(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if isinstance(event, yaml.AliasEvent):
                weight = weights.get(event.anchor, 1)
            elif isinstance(event, yaml.ScalarEvent):
                weight = 1
                if event.anchor:
                    weights[event.anchor] = 1
            elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                stack.append([event.anchor, 1])
                continue
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                anchor, weight = stack.pop()
                if anchor:
                    weights[anchor] = weight
            else:
                continue
            if stack:
                stack[-1][1] += weight
            else:
                total += weight
            if (stack and stack[-1][1] > limits.max_yaml_nodes) or total > limits.max_yaml_nodes:
                return (
                    f"YAML aliases expand to more than {limits.max_yaml_nodes} nodes "
                    "(limits.max_yaml_nodes); refusing a possible alias bomb"
                )
    except yaml.YAMLError:
        return None  # the real parse reports syntax errors with their position
    return None


def check_shape(data: object, limits: Limits) -> str | None:
    """Depth and mapping width of parsed data, walked iteratively.

    cfn-lint's YAML decoder compares every key of a mapping with every other (duplicate detection),
    so one mapping with a hundred thousand keys takes hours; CloudFormation accepts 500 resources.
    """
    stack: list[tuple[object, int, str]] = [(data, 1, "")]
    while stack:
        node, depth, where = stack.pop()
        if depth > limits.max_depth:
            return f"nested more than {limits.max_depth} levels deep (limits.max_depth)"
        if isinstance(node, dict):
            if len(node) > limits.max_mapping_keys:
                return (
                    f"a mapping with {len(node)} keys at {where or 'the top level'}, over "
                    f"{limits.max_mapping_keys} (limits.max_mapping_keys; CloudFormation accepts 500 resources)"
                )
            stack.extend((value, depth + 1, f"{where}/{key}" if depth < 3 else where) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, depth + 1, where) for value in node)
    return None
