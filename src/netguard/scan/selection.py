"""Which controls a scan reports, and at which severity: `--check`, `--skip-check` and the config's
`controls:` settings.

Selectors work as in Checkov, so a team that already gates on Checkov reads them the same way: an id
(NG-VPC-003, or an engine id such as CKV_NG_VPC_003 or W9503), a glob over ids (NG-VPC-*), or a
severity. `--check HIGH` keeps controls at HIGH or above; `--skip-check LOW` drops LOW and below. A
control runs when it matches some `--check` selector (or none is given) and no `--skip-check` one.

A selector or setting that names no control is an error: a typo must never turn a gate off quietly.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from netguard.catalog import SEVERITY_ORDER, Control, load_catalog
from netguard.errors import NetguardError
from netguard.suggest import did_you_mean


@dataclass(frozen=True)
class ControlSetting:
    """One control's entry under `controls:` in .netguard.yaml; the reason is shown in every report."""

    reason: str
    enabled: bool = True
    severity: str | None = None


@dataclass(frozen=True)
class Selection:
    """The outcome: the controls that run, their severities, and why any differ from the catalogue."""

    enabled: frozenset[str]
    severity: Mapping[str, str]
    changes: tuple[str, ...] = field(default=())  # one line per disabled or re-rated control, with its reason

    def severity_of(self, control: str) -> str:
        return self.severity[control]


def split_selectors(values: Iterable[str] | None) -> list[str]:
    """`--check A,B --check C` -> [A, B, C]."""
    return [item.strip() for value in values or () for item in value.split(",") if item.strip()]


def _names(control: Control) -> list[str]:
    return [control.id, *control.engines.values()]


def suggestion(word: str, choices: Iterable[str]) -> str:
    """The text ' (did you mean X?)' for a near miss, else an empty string."""
    hint = did_you_mean(word, choices)
    return f" ({hint})" if hint else ""


def _matches(selector: str, control: Control, severity: str, skipping: bool) -> bool:
    upper = selector.upper()
    if upper.lower() in SEVERITY_ORDER:
        order, wanted = SEVERITY_ORDER[severity], SEVERITY_ORDER[upper.lower()]
        return order <= wanted if skipping else order >= wanted
    if any(ch in selector for ch in "*?["):
        return any(fnmatch.fnmatchcase(name.upper(), upper) for name in _names(control))
    return any(name.upper() == upper for name in _names(control))


def _check_known(option: str, selectors: list[str], catalog: Mapping[str, Control]) -> None:
    names = [name for control in catalog.values() for name in _names(control)]
    for selector in selectors:
        if selector.lower() in SEVERITY_ORDER:
            continue
        if not any(_matches(selector, c, c.severity, False) for c in catalog.values()):
            choices = [*names, *(s.upper() for s in SEVERITY_ORDER)]
            raise NetguardError(option, f"{selector!r} names no control{suggestion(selector, choices)}")


def select(
    checks: Iterable[str] | None = None,
    skips: Iterable[str] | None = None,
    settings: Mapping[str, ControlSetting] | None = None,
) -> Selection:
    """Apply the config's settings first (a re-rated control is selected by its new severity), then
    the command line's selectors."""
    catalog = load_catalog()
    settings = settings or {}
    check_list, skip_list = split_selectors(checks), split_selectors(skips)
    _check_known("--check", check_list, catalog)
    _check_known("--skip-check", skip_list, catalog)
    severity = {cid: (settings[cid].severity if cid in settings else None) or c.severity for cid, c in catalog.items()}
    enabled = set()
    changes = []
    for cid, control in catalog.items():
        setting = settings.get(cid)
        if setting and not setting.enabled:
            changes.append(f"{cid} disabled by the config: {setting.reason}")
            continue
        if setting and setting.severity and setting.severity != control.severity:
            changes.append(f"{cid} severity {control.severity} -> {setting.severity} by the config: {setting.reason}")
        if check_list and not any(_matches(s, control, severity[cid], False) for s in check_list):
            continue
        if any(_matches(s, control, severity[cid], True) for s in skip_list):
            continue
        enabled.add(cid)
    if check_list or skip_list:
        disabled = {cid for cid, setting in settings.items() if not setting.enabled}
        left_out = [cid for cid in catalog if cid not in enabled and cid not in disabled]
        if left_out:
            changes.append(f"not run (--check/--skip-check): {', '.join(left_out)}")
    return Selection(frozenset(enabled), severity, tuple(changes))


def settings_from_config(path: str, data: Mapping[str, Mapping]) -> dict[str, ControlSetting]:
    """The config's `controls:` mapping, each id checked against the catalogue."""
    catalog = load_catalog()
    settings = {}
    for cid, entry in data.items():
        if cid not in catalog:
            raise NetguardError(path, f"invalid config at controls/{cid}: unknown control{suggestion(cid, catalog)}")
        settings[cid] = ControlSetting(
            reason=" ".join(str(entry["reason"]).split()),
            enabled=bool(entry.get("enabled", True)),
            severity=entry.get("severity"),
        )
    return settings
