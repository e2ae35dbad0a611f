"""The organization configuration (org.yaml) that guardrail rendering, simulation and rollout read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from netguard.errors import NetguardError
from netguard.resources import load_schema

DEFAULT_SIZE_LIMIT = 10240  # characters per SCP since May 2026 (5120 before)


@dataclass(frozen=True)
class OrgConfig:
    deploy_role: str
    break_glass: str
    exempt_principals: tuple[str, ...] = ()
    exempt_principal_tag: tuple[str, str] | None = None
    management_account_id: str | None = None
    organization_id: str | None = None
    flow_log_group_names: tuple[str, ...] = ("*flow-log*", "*flowlog*")
    guardrails: tuple[str, ...] | None = None
    scp_size_limit: int = DEFAULT_SIZE_LIMIT
    max_scps_per_target: int = 10
    targets: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    source: str = ""

    @property
    def exemptions(self) -> list[str]:
        """Every exempt ARN pattern: the deploy role and break-glass first, always."""
        return list(dict.fromkeys([self.deploy_role, self.break_glass, *self.exempt_principals]))


def load_org_config(path: Path) -> OrgConfig:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise NetguardError(str(path), f"cannot read organization config: {exc}") from None
    except yaml.YAMLError as exc:
        raise NetguardError(str(path), f"invalid YAML: {' '.join(str(exc).split())}") from None
    try:
        jsonschema.validate(data, load_schema("org.schema.json"))
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise NetguardError(str(path), f"invalid organization config at {where}: {exc.message}") from None
    tag = data.get("exempt_principal_tag")
    return OrgConfig(
        deploy_role=data["deploy_role"],
        break_glass=data["break_glass"],
        exempt_principals=tuple(data.get("exempt_principals", ())),
        exempt_principal_tag=(tag["key"], tag["value"]) if tag else None,
        management_account_id=data.get("management_account_id"),
        organization_id=data.get("organization_id"),
        flow_log_group_names=tuple(data.get("flow_log_group_names", OrgConfig.flow_log_group_names)),
        guardrails=tuple(data["guardrails"]) if "guardrails" in data else None,
        scp_size_limit=data.get("scp_size_limit", DEFAULT_SIZE_LIMIT),
        max_scps_per_target=data.get("max_scps_per_target", 10),
        targets=tuple(data.get("targets", ())),
        source=str(path),
    )
