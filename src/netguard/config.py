"""Scan configuration: .netguard.yaml, found from the scanned root upward or given explicitly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from netguard.errors import NetguardError
from netguard.resources import load_schema

CONFIG_NAME = ".netguard.yaml"


@dataclass(frozen=True)
class Limits:
    """Bounds that keep hostile input from taking the scanner down; each is a setting in .netguard.yaml."""

    max_file_mb: float = 64.0  # larger files are reported, not parsed
    max_depth: int = 200  # nesting of mappings/lists; C parsers crash on very deep input
    max_yaml_nodes: int = 2_000_000  # nodes a YAML file may expand to through aliases
    max_mapping_keys: int = 5_000  # keys in one mapping; CloudFormation itself takes at most 500 resources
    max_instances: int = 10_000  # instances one Terraform count/for_each may expand to


@dataclass(frozen=True)
class ScanConfig:
    approved_dns_servers: tuple[str, ...] = ("AmazonProvidedDNS",)
    approved_peer_accounts: tuple[str, ...] = ()
    severity_threshold: str = "low"
    limits: Limits = Limits()
    source: str | None = None

    def dns_approved(self, server: str) -> bool:
        if server.lower() == "amazonprovideddns":
            return any(s.lower() == "amazonprovideddns" for s in self.approved_dns_servers)
        return server in self.approved_dns_servers


DEFAULT_CONFIG = ScanConfig()
DEFAULT_LIMITS = Limits()


def find_config(start: Path) -> Path | None:
    """Nearest .netguard.yaml in start (or its folder) and its parents."""
    here = start.resolve()
    if not here.is_dir():
        here = here.parent
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path) -> ScanConfig:
    """Read and validate a config file; any problem is a NetguardError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise NetguardError(str(path), f"cannot read config: {exc}") from None
    except yaml.YAMLError as exc:
        raise NetguardError(str(path), f"invalid YAML: {_one_line(exc)}") from None
    if data is None:
        data = {}
    try:
        jsonschema.validate(data, load_schema("config.schema.json"))
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise NetguardError(str(path), f"invalid config at {where}: {exc.message}") from None
    return ScanConfig(
        approved_dns_servers=tuple(data.get("approved_dns_servers", DEFAULT_CONFIG.approved_dns_servers)),
        approved_peer_accounts=tuple(data.get("approved_peer_accounts", ())),
        severity_threshold=data.get("severity_threshold", "low"),
        limits=Limits(**data.get("limits", {})),
        source=str(path),
    )


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
