"""The control catalogue (checks/catalog.yaml): ids, titles, severities and engine ids."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import jsonschema
import yaml

from netguard.resources import load_schema, pack_path

SEVERITY_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3}


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    severity: str
    reports_on: dict[str, tuple[str, ...]]
    cloudtrail_events: tuple[str, ...]
    rationale: str
    remediation: str
    engines: dict[str, str]
    actions: tuple[str, ...] = field(default_factory=tuple)
    scp: dict[str, str] | None = None
    fix: tuple[str, ...] = ()  # AWS CLI command templates netguard audit fills in (see audit/fixes.py)

    def resource_types(self, framework: str) -> tuple[str, ...]:
        return self.reports_on.get(framework, ())


@cache
def load_catalog() -> dict[str, Control]:
    """Read and validate the catalogue; a broken catalogue is a packaging bug, so it raises."""
    path = pack_path("netguard.checks", "catalog.yaml")
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    jsonschema.validate(data, load_schema("catalog.schema.json"))
    controls: dict[str, Control] = {}
    for entry in data["controls"]:
        if entry["id"] in controls:
            raise ValueError(f"{path}: duplicate control id {entry['id']}")
        controls[entry["id"]] = Control(
            id=entry["id"],
            title=entry["title"],
            severity=entry["severity"],
            reports_on={k: tuple(v) for k, v in entry["reports_on"].items()},
            cloudtrail_events=tuple(entry["cloudtrail_events"]),
            rationale=entry["rationale"],
            remediation=entry["remediation"],
            engines=dict(entry["engines"]),
            actions=tuple(entry.get("actions", ())),
            scp=entry.get("scp"),
            fix=tuple(entry.get("fix", ())),
        )
    return controls


def control_for_engine_id(engine: str, engine_id: str) -> Control | None:
    """Map an engine's check id (e.g. CKV_NG_VPC_001) back to its control."""
    for control in load_catalog().values():
        if control.engines.get(engine) == engine_id:
            return control
    return None
