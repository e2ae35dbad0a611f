"""Policy documents committed as files: identity policies judged by the IAM controls, SCPs validated."""

from __future__ import annotations

from pathlib import Path

from netguard.catalog import load_catalog
from netguard.errors import InputError
from netguard.scan.findings import Finding
from netguard.scan.unit import ENGINE, UnitResult

SCP_FOLDERS = {"scp", "scps", "service-control-policies"}


def is_policy_document(data: object) -> bool:
    return isinstance(data, dict) and "Statement" in data and "Resources" not in data


def scan_policy_file(path: str, document: dict) -> UnitResult:
    """A policy document committed as a file: under scp/ it must be a valid SCP (what AWS refuses is an
    error); elsewhere an identity policy, judged by the IAM controls. Resource policies are not read."""
    import json

    from netguard.iam.statements import risky_statements, statements_of
    from netguard.policy.validate import validate_document

    out = UnitResult(scanned=[path])
    line = document.line_of("Statement") if hasattr(document, "line_of") else 1
    if SCP_FOLDERS & {part.lower() for part in Path(path).parts[:-1]}:
        for problem in validate_document(json.dumps(document), lockout=False):
            out.errors.append(InputError(path, f"not a valid service control policy: {problem}", line or None))
        return out
    if any(isinstance(s, dict) and ("Principal" in s or "NotPrincipal" in s) for s in statements_of(document)):
        return out  # a resource policy (bucket, endpoint): not an identity grant
    name = Path(path).name
    for control in load_catalog().values():
        if not control.actions:
            continue
        hits = risky_statements(document, control.actions)
        if hits:
            message = f"{name}: " + "; ".join(hit.describe() for hit in hits)
            out.findings.append(Finding(control.id, path, name, line or 1, control.severity, message, [ENGINE]))
    out.resources[path] = {name}
    return out
