"""A finding's fix: the catalogue's AWS CLI templates (its `fix:` list) with the resource's values in.

The commands are printed, never run. Every value is shell-quoted, AWS's and netguard's own
placeholders alike: an id or a name cannot turn into a second command when the line is pasted into a
shell, and an unedited '<PLACEHOLDER>' reaches AWS as a bad value instead of the shell reading its `<`
and `>` as redirections (which could truncate a file). A step whose {placeholders} a finding cannot
fill is left out: that is how one list holds alternatives (an IPv4 or an IPv6 route, an inline or a
managed policy). A `# note` line heads the steps after it and is kept only when one of them is.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping

_FIELD = re.compile(r"\{([a-z0-9_]+)\}")


class Placeholder(str):
    """A value the user must supply (<LOG_GROUP>), given by netguard itself; quoted like any value."""


class ShellWords(str):
    """Several arguments netguard has already shell-quoted one by one (a --dhcp-configurations list):
    printed as they are, since quoting them again would make them one argument."""


def shell_words(words: Iterable[str]) -> ShellWords:
    return ShellWords(" ".join(shlex.quote(str(word)) for word in words))


def placeholders(template: str) -> list[str]:
    """The {names} a template needs."""
    return _FIELD.findall(template)


def fill(templates: Iterable[str], targets: Iterable[Mapping[str, str]], common: Mapping[str, str]) -> tuple[str, ...]:
    """The commands for one finding: each template once per target that fills it, in catalogue order,
    without repeats (create-dhcp-options is one command however many VPCs follow)."""
    targets = list(targets) or [{}]
    out: list[str] = []
    pending_note: str | None = None
    for template in templates:
        if template.startswith("#"):
            pending_note = template
            continue
        needed = placeholders(template)
        for target in targets:
            values = {**common, **target}
            if not all(values.get(name) for name in needed):
                continue
            command = _FIELD.sub(lambda m, values=values: _shell(values[m.group(1)]), template)
            if command in out:
                continue
            if pending_note is not None:
                out.append(pending_note)
                pending_note = None
            out.append(command)
    return tuple(out)


def _shell(value: str) -> str:
    return str(value) if isinstance(value, ShellWords) else shlex.quote(str(value))
