"""The plug-ins that run netguard's controls inside plain Checkov and cfn-lint.

They are not on `netguard scan`'s path: they exist for teams that run the engines themselves. Both
call the same per-file evaluation as `netguard scan` (scan.run.scan_template / scan_module), so a
plug-in can only differ from the scanner where the engine presents a resource differently, and the
parity test (tests/test_plugins.py) runs the real engines to prove it does not.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

from netguard.config import CONFIG_ENV, DEFAULT_CONFIG, ScanConfig, find_config, load_config

_configs: dict[str, ScanConfig] = {}


def plugin_config() -> ScanConfig:
    """Under a plain engine there is no --config: $NETGUARD_CONFIG, else the repository root's config."""
    key = os.environ.get(CONFIG_ENV) or os.getcwd()
    if key not in _configs:
        found = Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else find_config(Path(key))
        _configs[key] = load_config(found) if found else DEFAULT_CONFIG
    return _configs[key]


def file_key(path: str) -> tuple[str, int, int] | None:
    """Identity of a file's current content, so a cache never answers for an edited file."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (os.path.realpath(path), stat.st_mtime_ns, stat.st_size)


class Cache(OrderedDict):
    """A small least-recently-used map of evaluated files or modules."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def remember(self, key: Any, value: Any) -> Any:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)
        return value
