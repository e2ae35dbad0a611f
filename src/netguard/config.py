"""Scan configuration: .netguard.yaml, found from the scanned root upward or given explicitly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

from netguard.errors import NetguardError
from netguard.resources import load_schema
from netguard.scan.selection import ControlSetting, settings_from_config

CONFIG_NAME = ".netguard.yaml"


@dataclass(frozen=True)
class Limits:
    """Bounds that keep hostile input from taking the scanner down; each is a setting in .netguard.yaml."""

    max_file_mb: float = 64.0  # larger files are reported, not parsed
    max_depth: int = 200  # nesting of mappings/lists; C parsers crash on very deep input
    max_yaml_nodes: int = 2_000_000  # nodes a YAML file may expand to through aliases
    max_mapping_keys: int = 5_000  # keys in one mapping; CloudFormation itself takes at most 500 resources
    max_instances: int = 10_000  # instances one Terraform count/for_each may expand to
    max_template_mb: float = 1.0  # CloudFormation's own limit for a template body (in S3)


# Globs for the policy files that are service control policies, as the pre-commit hook picks them.
DEFAULT_SCP_PATHS = ("**/scp/**", "**/scps/**", "**/service-control-policies/**")


@dataclass(frozen=True)
class ConstructSuppression:
    """A suppression in the config: CDK output is generated, so its findings are suppressed by construct path."""

    control: str
    construct: str  # a glob on the construct path: * and ? within one path segment, ** across segments
    reason: str


@dataclass(frozen=True)
class ArnSuppression:
    """An audit suppression: live resources have no source to comment, so they are named by ARN glob."""

    arn: str  # fnmatch glob on the finding's ARN: * and ? match any characters, / and : included
    reason: str
    control: str | None = None  # None: every control

    def covers(self, control: str, arn: str) -> bool:
        import fnmatch

        return (self.control is None or self.control == control) and fnmatch.fnmatchcase(arn, self.arn)


@dataclass(frozen=True)
class ScanConfig:
    approved_dns_servers: tuple[str, ...] = ("AmazonProvidedDNS",)
    approved_peer_accounts: tuple[str, ...] = ()
    severity_threshold: str = "low"
    unresolved_modules: str = "notice"  # a Terraform module netguard cannot follow: "notice" or "error"
    limits: Limits = Limits()
    scp_paths: tuple[str, ...] = DEFAULT_SCP_PATHS  # policy files judged as SCPs (scan/policy_files.py)
    suppressions: tuple[ConstructSuppression, ...] = ()
    source: str | None = None
    controls: tuple[tuple[str, ControlSetting], ...] = ()  # `controls:` (id, setting): off or re-rated, with reasons
    docs_url: str | None = None  # where docs/controls.md is published; None: links name the file in the repository
    audit_suppressions: tuple[ArnSuppression, ...] = ()  # `audit: suppressions:` (netguard audit only)

    def dns_approved(self, server: str) -> bool:
        if server.lower() == "amazonprovideddns":
            return any(s.lower() == "amazonprovideddns" for s in self.approved_dns_servers)
        return server in self.approved_dns_servers


DEFAULT_CONFIG = ScanConfig()
DEFAULT_LIMITS = Limits()


CONFIG_ENV = "NETGUARD_CONFIG"


def repository_root(start: Path) -> Path:
    """The folder holding `.git` at or above start; start itself outside a repository."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return here


def find_config(start: Path) -> Path | None:
    """The repository owner's config: `.netguard.yaml` at the root of the repository holding start.

    Never a file below the root (whoever writes a pull request could add one) and never one above it
    (a stray file in /tmp or a home folder must not change a scan).
    """
    candidate = repository_root(start) / CONFIG_NAME
    return candidate if candidate.is_file() else None


def load_config(path: Path) -> ScanConfig:
    """Read and validate a config file; any problem is a NetguardError naming the file.

    The config gets the same byte and YAML limits as a template: it can come from a pull request too.
    """
    from netguard.safety import check_aliases, read_vetted

    raw, problem = read_vetted(path, DEFAULT_LIMITS)
    if problem:
        raise NetguardError(str(path), f"cannot read config: {problem}")
    try:
        text = raw.decode("utf-8-sig")
        problem = check_aliases(text, Limits(max_yaml_nodes=10_000))
        if problem:
            raise NetguardError(str(path), problem)
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except UnicodeDecodeError as exc:
        raise NetguardError(str(path), f"cannot read config: not valid UTF-8 (byte {exc.start})") from None
    except (yaml.YAMLError, RecursionError) as exc:
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
        unresolved_modules=data.get("unresolved_modules", "notice"),
        limits=Limits(**data.get("limits", {})),
        scp_paths=tuple(data.get("scp_paths", DEFAULT_SCP_PATHS)),
        suppressions=_suppressions(path, data.get("suppressions", [])),
        source=str(path),
        controls=tuple(settings_from_config(str(path), data.get("controls", {})).items()),
        docs_url=data.get("docs_url"),
        audit_suppressions=_arn_suppressions(path, data.get("audit", {}).get("suppressions", [])),
    )


def _suppressions(path: Path, entries: list[dict]) -> tuple[ConstructSuppression, ...]:
    """Config suppressions; one naming a control the catalogue lacks would silently suppress nothing."""
    from netguard.catalog import load_catalog

    catalog = load_catalog()
    for index, entry in enumerate(entries):
        if entry["control"] not in catalog:
            raise NetguardError(
                str(path), f"invalid config at suppressions/{index}: unknown control {entry['control']}"
            )
    return tuple(ConstructSuppression(e["control"], e["construct"], e["reason"].strip()) for e in entries)


def _arn_suppressions(path: Path, entries: list[dict]) -> tuple[ArnSuppression, ...]:
    """`audit: suppressions:`, each control checked against the catalogue as the scan's are."""
    from netguard.catalog import load_catalog

    catalog = load_catalog()
    for index, entry in enumerate(entries):
        if "control" in entry and entry["control"] not in catalog:
            raise NetguardError(
                str(path), f"invalid config at audit/suppressions/{index}: unknown control {entry['control']}"
            )
    return tuple(ArnSuppression(e["arn"], " ".join(e["reason"].split()), e.get("control")) for e in entries)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
