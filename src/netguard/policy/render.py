"""Render the guardrail templates under policies/ into minified policies for an organization."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
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


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """ " (did you mean X?)" for the choice closest to a mistyped name, or "" when none is close.

    Guardrail names are long and alike (ng-deny-eip-management, ng-deny-network-deletes); a list of
    every name makes the reader find the typo, a suggestion points at it. Case is ignored, since YAML
    users type NG-... as often as ng-...; for other code that takes typed guardrail names (the
    rollout's targets)."""
    by_lower = {choice.lower(): choice for choice in choices}
    if name.lower() in by_lower:
        return f" (did you mean {by_lower[name.lower()]}?)"
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean {by_lower[close[0]]}?)" if close else ""


def render(org: OrgConfig, kind: str = "scp") -> dict[str, dict[str, Any]]:
    """The organization's guardrails as policy documents, by name.

    The names org.yaml types, in `guardrails` and in each target's `guardrails`, must be guardrails
    this render produces: a typo is an error with a suggestion here, before simulate would evaluate
    the policies without it or the rollout would stop on it."""
    available = templates(kind)
    wanted = org.guardrails if org.guardrails is not None else tuple(available)
    unknown = [f"{name}{did_you_mean(name, available)}" for name in wanted if name not in available]
    if unknown:
        raise NetguardError(
            org.source or "org config", f"unknown guardrails: {', '.join(unknown)} (available: {', '.join(available)})"
        )
    if kind == "scp":
        _check_targets(org, wanted, available)
    return {name: _fill(available[name], org, f"policies/{kind}/{name}.json") for name in wanted}


def _check_targets(org: OrgConfig, wanted: Iterable[str], available: Iterable[str]) -> None:
    """Each target's guardrails are among those rendered: the rollout attaches only what render writes."""
    rendered = list(wanted)
    problems = []
    for target in org.targets:
        names = target.get("guardrails") if isinstance(target, dict) else None
        where = target.get("target", "?") if isinstance(target, dict) else "?"
        for name in names if isinstance(names, list) else []:
            if name in rendered:
                continue
            if name in available:
                problems.append(f"target {where}: guardrail {name} is not rendered (add it to guardrails)")
            else:
                problems.append(f"target {where}: unknown guardrail {name}{did_you_mean(name, rendered)}")
    if problems:
        raise NetguardError(org.source or "org config", "; ".join(problems))


IAM_MANAGED_POLICY_LIMIT = 6144  # characters per customer managed policy, whitespace excluded


def render_to_dir(org: OrgConfig, out: Path, kind: str = "scp") -> list[tuple[str, int]]:
    """Write NAME.json (minified) per guardrail; refuses, writing nothing, if any is over the size limit.

    kind "scp" renders the service control policies; "iam" the permission boundary and NetworkAdmin
    policy for accounts outside AWS Organizations (all of them, whatever `guardrails` lists). The
    folder is render's own: see render_folder.
    """
    return render_folder(org, out, kind).written


@dataclass(frozen=True)
class Rendered:
    """What one render did to its folder: the files written (name, characters) and the files of the
    previous render it removed because they are no longer rendered."""

    written: list[tuple[str, int]]
    removed: list[str]


def render_folder(org: OrgConfig, out: Path, kind: str = "scp") -> Rendered:
    """Render into out, which render owns: a manifest (MANIFEST) lists the files it wrote, the files
    of the previous render that are no longer rendered are removed, and a folder holding files render
    did not write is refused, naming them.

    Why: simulate and replay read every *.json in the folder, so a guardrail dropped from org.yaml
    would otherwise still be evaluated from the file an earlier render left, and a hand-made file
    would be evaluated as if render had written it. Subfolders are not render's (they are the levels
    simulate reads, each rendered on its own) and are left alone.
    """
    if kind == "iam":
        documents = {name: _fill(doc, org, f"policies/iam/{name}.json") for name, doc in templates("iam").items()}
        limit, label = IAM_MANAGED_POLICY_LIMIT, "managed policy"
    else:
        documents = render(org)
        limit, label = org.scp_size_limit, "SCP"
    rendered = {f"{name}.json": minify(doc) for name, doc in documents.items()}
    oversize = [
        f"{name.removesuffix('.json')} is {len(text)} characters"
        for name, text in rendered.items()
        if len(text) > limit
    ]
    if oversize:
        raise NetguardError(
            org.source or "org config", f"over the {label} size limit of {limit} characters: {'; '.join(oversize)}"
        )
    previous = _claim(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        # Listed before written: a render cut short leaves no file that the next one would take as foreign.
        _write_manifest(out, org, kind, sorted(set(previous) | set(rendered)))
        for name, text in rendered.items():
            _write(out / name, text + "\n")
        removed = []
        for name in sorted(set(previous) - set(rendered)):
            stale = out / name
            if stale.is_symlink() or stale.is_file():
                stale.unlink()
                removed.append(name)
        _write_manifest(out, org, kind, sorted(rendered))
    except OSError as exc:
        raise NetguardError(str(out), f"cannot write policies: {exc.strerror or exc}") from None
    return Rendered([(name.removesuffix(".json"), len(text)) for name, text in rendered.items()], removed)


# The manifest render writes into its folder. It ends in .json like the policies, so every reader of
# a rendered folder (simulate, replay, validate) leaves it out by this name.
MANIFEST = ".netguard-render.json"
_MANIFEST_FORMAT = "netguard policy render manifest"
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*\.json")
_SHOWN = 10  # files named in a refusal; the rest are counted
_TEMPORARY = (".netguard-render-", ".tmp")  # prefix and suffix of the files written, then renamed


def _temporary(name: str) -> bool:
    return name.startswith(_TEMPORARY[0]) and name.endswith(_TEMPORARY[1])


def _claim(out: Path) -> list[str]:
    """The files the previous render wrote into out ([] for a new or empty folder); refuses a folder
    holding any file render did not write, naming them, so that render never overwrites or leaves
    beside its own output what someone else put there."""
    if out.exists() and not out.is_dir():
        raise NetguardError(str(out), "not a folder: --output names the folder render writes into")
    if not out.exists():
        return []
    previous = read_manifest(out)
    listed = set(previous or ())
    try:
        present = sorted(entry.name for entry in out.iterdir() if entry.is_symlink() or not entry.is_dir())
    except OSError as exc:
        raise NetguardError(str(out), f"cannot read the folder: {exc.strerror or exc}") from None
    for name in present:  # a render killed while writing leaves its temporary file: render's own
        if _temporary(name):
            (out / name).unlink(missing_ok=True)
    foreign = [name for name in present if name != MANIFEST and name not in listed and not _temporary(name)]
    if foreign:
        why = (
            f"holds files the last render did not write ({MANIFEST} does not list them)"
            if previous is not None
            else f"holds files and no {MANIFEST}, so render did not write them"
        )
        raise NetguardError(
            str(out),
            f"{why}: {_names(foreign)}; render writes only into a new or empty folder or one it rendered "
            "before: move those files or choose another folder",
        )
    return sorted(listed)


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def read_manifest(folder: Path) -> list[str] | None:
    """The file names the last render listed in folder's manifest, or None when there is none.

    A manifest that is not render's (unreadable, another shape, a name with a path in it) is an error
    naming it rather than ignored: render would otherwise remove or keep files on its word."""
    path = folder / MANIFEST
    if not path.is_file():
        if path.is_symlink() or path.exists():
            raise NetguardError(str(path), "not a regular file: a render manifest is one render writes")
        return None
    try:
        data = json.loads(path.read_bytes()[: 1024 * 1024 + 1])
    except (OSError, ValueError) as exc:
        raise NetguardError(str(path), f"not a render manifest: cannot read it as JSON: {exc}") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("format") != _MANIFEST_FORMAT or not isinstance(files, list):
        raise NetguardError(
            str(path), f"not a render manifest: expected {{'format': {_MANIFEST_FORMAT!r}, 'files': [...]}}"
        )
    bad = [name for name in files if not isinstance(name, str) or not _FILE_NAME.fullmatch(name) or name == MANIFEST]
    if bad:
        raise NetguardError(str(path), f"not a render manifest: not a policy file name: {str(bad[0])[:80]!r}")
    return list(files)


def _write_manifest(out: Path, org: OrgConfig, kind: str, files: list[str]) -> None:
    """The manifest names the org config and its digest too, so that a reader can tell which config a
    folder was rendered from."""
    from netguard import __version__

    config = org.source or None
    digest = None
    if config:
        try:
            digest = hashlib.sha256(Path(config).read_bytes()).hexdigest()
        except OSError:
            digest = None
    manifest = {
        "format": _MANIFEST_FORMAT,
        "netguard": __version__,
        "kind": kind,
        "config": config,
        "config_sha256": digest,
        "files": files,
    }
    _write(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def _write(path: Path, text: str) -> None:
    """Write through a temporary file and a rename: a symlink left in the folder is replaced, never
    followed, and a reader never sees half a policy. The file gets the umask's permissions, as a plain
    write would give it."""
    temporary = path.with_name(f"{_TEMPORARY[0]}{os.getpid()}-{path.name}{_TEMPORARY[1]}")
    temporary.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        with os.fdopen(os.open(temporary, flags, 0o666), "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def rendered_folder_problems(folder: Path) -> list[tuple[Path, str]]:
    """Why a folder render wrote cannot be read as it is: a file its manifest lists is missing, or a
    *.json file is there that the manifest does not list (left by an older render or put there by
    hand). A folder without a manifest was not rendered and has no such problems.

    Why: simulate and replay evaluate every *.json in a level, so a stale or foreign policy would
    change the answer without anyone having rendered it."""
    listed = read_manifest(folder)
    if listed is None:
        return []
    problems = [
        (folder / name, f"listed in {MANIFEST} but missing: render again into this folder")
        for name in listed
        if not (folder / name).is_file()
    ]
    problems.extend(
        (
            path,
            f"not written by the last render ({MANIFEST} does not list it): a stale or foreign policy, "
            "not evaluated; remove it",
        )
        for path in sorted(folder.glob("*.json"))
        if path.name != MANIFEST and path.name not in listed
    )
    return problems
