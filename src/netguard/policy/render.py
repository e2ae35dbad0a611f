"""Render the guardrail templates under policies/ into minified policies for an organization."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from netguard.catalog import load_catalog
from netguard.errors import NetguardError
from netguard.policy.orgconfig import OrgConfig


def minify(document: Any) -> str:
    """The AWS API stores policies as given, whitespace included, and counts it against the quota."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def templates(kind: str = "scp") -> dict[str, dict[str, Any]]:
    """Guardrail templates by name (file name without .json)."""
    folder = resources.files("netguard.policies").joinpath(kind)
    found = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            found[entry.name[: -len(".json")]] = json.loads(entry.read_text(encoding="utf-8"))
    return found


def exemption_condition(org: OrgConfig) -> dict[str, Any]:
    """Deny only when the caller matches no exempt ARN pattern (and lacks the exempt tag, if any)."""
    condition: dict[str, Any] = {"ArnNotLike": {"aws:PrincipalArn": org.exemptions}}
    if org.exempt_principal_tag:
        key, value = org.exempt_principal_tag
        condition["StringNotEquals"] = {f"aws:PrincipalTag/{key}": value}
    return condition


def _flow_log_group_arns(org: OrgConfig) -> list[str]:
    arns = []
    for name in org.flow_log_group_names:
        arns.append(f"arn:aws:logs:*:*:log-group:{name}")
        arns.append(f"arn:aws:logs:*:*:log-group:{name}:log-stream:*")
    return arns


def _fill(node: Any, org: OrgConfig, template: str) -> Any:
    if isinstance(node, dict):
        return {k: _fill(v, org, template) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, org, template) for v in node]
    if isinstance(node, str) and node.startswith("{{") and node.endswith("}}"):
        name = node[2:-2]
        if name == "exemptions":
            return exemption_condition(org)
        if name == "flow_log_group_arns":
            return _flow_log_group_arns(org)
        if name.startswith("actions:"):
            control = load_catalog().get(name.removeprefix("actions:"))
            if control and control.actions:
                return list(control.actions)
        raise NetguardError(template, f"unknown placeholder {node}")
    return node


def render(org: OrgConfig, kind: str = "scp") -> dict[str, dict[str, Any]]:
    """The organization's guardrails as policy documents, by name."""
    available = templates(kind)
    wanted = org.guardrails if org.guardrails is not None else tuple(available)
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise NetguardError(
            org.source or "org config", f"unknown guardrails: {', '.join(unknown)} (available: {', '.join(available)})"
        )
    return {name: _fill(available[name], org, f"policies/{kind}/{name}.json") for name in wanted}


IAM_MANAGED_POLICY_LIMIT = 6144  # characters per customer managed policy, whitespace excluded


def render_to_dir(org: OrgConfig, out: Path, kind: str = "scp") -> list[tuple[str, int]]:
    """Write NAME.json (minified) per guardrail; refuses, writing nothing, if any is over the size limit.

    kind "scp" renders the service control policies; "iam" the permission boundary and NetworkAdmin
    policy for accounts outside AWS Organizations (all of them, whatever `guardrails` lists).
    """
    if kind == "iam":
        documents = {name: _fill(doc, org, f"policies/iam/{name}.json") for name, doc in templates("iam").items()}
        limit, label = IAM_MANAGED_POLICY_LIMIT, "managed policy"
    else:
        documents = render(org)
        limit, label = org.scp_size_limit, "SCP"
    rendered = {name: minify(doc) for name, doc in documents.items()}
    oversize = [f"{name} is {len(text)} characters" for name, text in rendered.items() if len(text) > limit]
    if oversize:
        raise NetguardError(
            org.source or "org config", f"over the {label} size limit of {limit} characters: {'; '.join(oversize)}"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in rendered.items():
            (out / f"{name}.json").write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise NetguardError(str(out), f"cannot write policies: {exc.strerror}") from None
    return [(name, len(text)) for name, text in rendered.items()]
