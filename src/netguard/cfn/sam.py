"""SAM templates expanded by the real SAM translator (aws-sam-translator), offline.

The translator is what CloudFormation runs for `Transform: AWS::Serverless-2016-10-31`, so the roles,
policy templates and connectors it generates are judged as deployed. Three things keep it offline and
faithful to what a developer commits before `sam package`:
- local artifact paths (CodeUri, DefinitionUri, ContentUri) stand for the S3 objects `sam package`
  would upload; a Serverless Application Repository location becomes a remote TemplateURL (a notice);
- the managed-policy names come from the map bundled with the translator, never from IAM;
- a SAM resource the translator refuses stays in the template as written, so the controls still read
  its inline policies, and the reason is reported as a notice, never as an input error (cfn-lint, which
  validates SAM without translating it, accepts such templates).
Each generated resource is traced to the SAM resource it came from, so findings name that resource.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
_ORIGIN = "netguard:sam-origin"  # a Metadata key that the translator copies onto generated resources
_PLACEHOLDER_REGION = "us-east-1"  # the translator needs a region to build ARNs; none is called
_ARTIFACTS = {  # resource type -> properties that hold a local path before `sam package`
    "AWS::Serverless::Function": ("CodeUri",),
    "AWS::Serverless::LayerVersion": ("ContentUri",),
    "AWS::Serverless::Api": ("DefinitionUri",),
    "AWS::Serverless::HttpApi": ("DefinitionUri",),
    "AWS::Serverless::StateMachine": ("DefinitionUri",),
}
_GLOBAL_ARTIFACTS = {"Function": ("CodeUri",), "Api": ("DefinitionUri",), "HttpApi": ("DefinitionUri",)}
MAX_ATTEMPTS = 5  # each retry leaves out the resources the translator refused


@dataclass
class Expansion:
    data: dict[str, Any]  # the CloudFormation template after the transform
    origin: dict[str, str] = field(default_factory=dict)  # generated logical id -> SAM logical id
    notices: list[str] = field(default_factory=list)


def is_sam(data: Any) -> bool:
    transform = data.get("Transform") if isinstance(data, dict) else None
    names = transform if isinstance(transform, list) else [transform]
    return SAM_TRANSFORM in names


def _plain(node: Any) -> Any:
    """A copy made of plain dicts, lists and scalars: the translator type-checks with isinstance."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items() if not str(k).startswith("__")}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _stand_in_artifacts(properties: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        value = properties.get(key)
        if isinstance(value, str) and not value.startswith("s3://"):
            properties[key] = f"s3://netguard-local-artifact/{value.strip('./') or 'code'}"


def _prepare(data: dict[str, Any]) -> None:
    globals_ = data.get("Globals")
    if isinstance(globals_, dict):
        for section, keys in _GLOBAL_ARTIFACTS.items():
            if isinstance(globals_.get(section), dict):
                _stand_in_artifacts(globals_[section], keys)
    for name, resource in data.get("Resources", {}).items():
        kind = resource.get("Type") if isinstance(resource, dict) else None
        if not isinstance(kind, str) or not kind.startswith("AWS::Serverless::"):
            continue
        properties = resource.setdefault("Properties", {})
        if not isinstance(properties, dict):
            continue
        _stand_in_artifacts(properties, _ARTIFACTS.get(kind, ()))
        if kind == "AWS::Serverless::Function" and properties.get("PackageType") == "Image":
            properties.setdefault("ImageUri", "netguard-local-image")  # `sam build` fills it from Metadata
        if kind == "AWS::Serverless::Application" and isinstance(properties.get("Location"), dict):
            application = properties["Location"].get("ApplicationId")  # never fetched: a notice says so
            properties["Location"] = f"serverlessrepo://{application if isinstance(application, str) else 'app'}"
        metadata = resource.get("Metadata")
        resource["Metadata"] = {**(metadata if isinstance(metadata, dict) else {}), _ORIGIN: name}


def _translate(data: dict[str, Any]) -> dict[str, Any]:
    import boto3
    from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
    from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    logging.getLogger("samtranslator").setLevel(logging.CRITICAL)  # its feature-toggle and metrics chatter
    partition_map = get_bundled_managed_policy_map("aws") or {}
    session = boto3.session.Session(region_name=_PLACEHOLDER_REGION)
    metrics = Metrics("netguard", DummyMetricsPublisher())
    translator = Translator(None, Parser(), boto_session=session, metrics=metrics)
    try:
        return translator.translate(
            data, parameter_values={}, passthrough_metadata=True, get_managed_policy_map=lambda: partition_map
        )
    finally:
        metrics.publish()  # to nowhere: an unpublished cache is a warning when it is collected


def expand_sam(data: dict[str, Any]) -> Expansion:
    """The template after the SAM transform; refused SAM resources are kept as written."""
    from samtranslator.model.exceptions import InvalidDocumentException

    if not isinstance(data.get("Resources"), dict) or not data["Resources"]:
        return Expansion(data)
    source = _plain(data)
    _prepare(source)
    refused: dict[str, str] = {}
    notices: list[str] = []
    for _ in range(MAX_ATTEMPTS):
        attempt = copy.deepcopy(source)
        for name in refused:
            attempt["Resources"].pop(name, None)
        if not attempt["Resources"]:  # every resource refused: nothing is left to transform
            translated = {key: value for key, value in attempt.items() if key not in ("Transform", "Globals")}
            break
        try:
            translated = _translate(attempt)
            break
        except InvalidDocumentException as exc:
            causes = getattr(exc, "causes", []) or [exc]
            new = {
                name: _message(cause)
                for cause in causes
                for name in _logical_ids(cause)
                if name in source["Resources"] and name not in refused
            }
            if not new:
                return _unexpanded(data, f"the SAM transform refuses this template: {_message(causes[0])}")
            refused.update(new)
        except Exception as exc:  # the translator is third-party code: any failure is reported, not raised
            return _unexpanded(data, f"the SAM transform failed ({type(exc).__name__}: {exc})")
    else:
        return _unexpanded(data, "the SAM transform kept refusing resources")
    resources = translated.setdefault("Resources", {})
    origin: dict[str, str] = {}
    for name, resource in resources.items():
        metadata = resource.get("Metadata") if isinstance(resource, dict) else None
        if isinstance(metadata, dict) and _ORIGIN in metadata:  # one dict, shared by every copy
            origin[name] = metadata[_ORIGIN]
            kept = {key: value for key, value in metadata.items() if key != _ORIGIN}
            if kept:
                resource["Metadata"] = kept
            else:
                resource.pop("Metadata")
    for name, reason in refused.items():
        resources[name] = data["Resources"][name]  # as written: its inline policies are still read
        notices.append(f"SAM resource {name} was not expanded ({reason}); its inline policies are judged as written")
    return Expansion(translated, origin, notices)


def _unexpanded(data: dict[str, Any], reason: str) -> Expansion:
    return Expansion(data, {}, [f"{reason}; SAM resources are judged as written (inline policies only)"])


def _logical_ids(cause: Any) -> list[str]:
    named = getattr(cause, "_logical_id", None)
    return [str(n) for n in (named if isinstance(named, list) else [named]) if n]


def _message(cause: Any) -> str:
    text = getattr(cause, "message", None) or str(cause)
    return " ".join(str(text).split())
