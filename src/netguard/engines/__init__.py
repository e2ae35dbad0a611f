"""The plug-ins that run netguard's controls inside plain Checkov and cfn-lint.

They are not on `netguard scan`'s path: they exist for teams that run the engines themselves. Both
call the same per-file evaluation as `netguard scan` (scan.run.scan_template / scan_module), so a
plug-in can only differ from the scanner where the engine presents a resource differently, and the
parity test (tests/test_plugins.py) runs the real engines to prove it does not.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import tempfile
from collections import OrderedDict
from hashlib import sha256
from pathlib import Path
from typing import Any

from netguard.config import CONFIG_ENV, DEFAULT_CONFIG, ScanConfig, find_config, load_config
from netguard.errors import NetguardError

_configs: dict[str, ScanConfig | NetguardError] = {}


def plugin_config() -> ScanConfig:
    """Under a plain engine there is no --config: $NETGUARD_CONFIG, else the repository root's config.

    Read once per process. A config that cannot be read or is invalid raises its NetguardError (naming
    the file) on every call: the plug-ins then fail closed, they never fall back to the defaults.
    """
    key = os.environ.get(CONFIG_ENV) or os.getcwd()
    if key not in _configs:
        found = Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else find_config(Path(key))
        try:
            _configs[key] = load_config(found) if found else DEFAULT_CONFIG
        except NetguardError as exc:
            _configs[key] = exc
    config = _configs[key]
    if isinstance(config, NetguardError):
        raise config
    return config


def turned_off(config: ScanConfig, control_id: str) -> str | None:
    """Why the config's `controls:` turns this control off (naming the config), else None.

    The plug-ins honour it as `netguard scan` does, so one switch covers every engine; --check and
    --skip-check stay with each engine's own flags."""
    setting = dict(config.controls).get(control_id)
    if setting is None or setting.enabled:
        return None
    return f"{control_id} is turned off in {config.source or 'the config'}: {setting.reason}"


def config_key(config: ScanConfig) -> int:
    """A cache key for a config plugin_config returned: it keeps every config alive, so identity is stable
    (and a config need not be hashable)."""
    return id(config)


def say_once(message: str) -> None:
    """Write a message to standard error once per engine run.

    Checkov forks one process per framework (CloudFormation, Terraform, ...), and each would say it
    again: a marker file named after the process that started the run (and its start time, so a
    reused process id does not silence a later run) lets the first one say it. Markers of runs that
    have ended are removed.
    """
    parent = multiprocessing.parent_process()
    top = parent.pid if parent is not None and parent.pid is not None else os.getpid()
    try:
        started = Path(f"/proc/{top}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        started = ""  # not Linux: no marker, each process says it
    if started:
        folder = Path(tempfile.gettempdir())
        for old in folder.glob("netguard-said-*"):
            if not Path(f"/proc/{old.name.split('-')[2]}").exists():
                with contextlib.suppress(OSError):
                    old.unlink(missing_ok=True)
        digest = sha256(f"{started}:{message}".encode()).hexdigest()[:16]
        try:
            os.close(os.open(folder / f"netguard-said-{top}-{digest}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return
        except OSError:
            pass  # no writable temporary folder: say it in every process rather than not at all
    print(message, file=sys.stderr, flush=True)


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
