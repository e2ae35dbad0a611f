"""Where each resource of a template starts and ends, found in the text without a second parse."""

from __future__ import annotations

import re

_TOP_KEY = re.compile(r'^(?:"?Resources"?)\s*:')
_YAML_KEY = re.compile(r"^(\s+)([A-Za-z0-9]+)\s*:")
_JSON_KEY = re.compile(r'^(\s*)"([A-Za-z0-9]+)"\s*:\s*\{')


def resource_lines(text: str, names: list[str]) -> dict[str, tuple[int, int]]:
    """1-based (first, last) line of each named resource; names not found start at line 1."""
    lines = text.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if _TOP_KEY.match(line.lstrip() if line.startswith('  "') else line)), None
    )
    found: dict[str, int] = {}
    if start is not None:
        pattern = _JSON_KEY if lines[start].lstrip().startswith('"') else _YAML_KEY
        indent = None
        for number in range(start + 1, len(lines)):
            line = lines[number]
            if line and not line[0].isspace() and not line.startswith("#") and pattern is _YAML_KEY:
                break
            match = pattern.match(line)
            if not match:
                continue
            width = len(match.group(1))
            if indent is None:
                indent = width
            if width == indent and match.group(2) not in found:
                found[match.group(2)] = number + 1
    starts = sorted(found.values())
    spans = {}
    for name in names:
        first = found.get(name, 1)
        later = [s for s in starts if s > first]
        spans[name] = (first, (later[0] - 1) if later else max(len(lines), first))
    return spans
