"""Load a CloudFormation template (YAML with short-form tags, or JSON), reporting errors as values."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

try:
    _BaseLoader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _BaseLoader = yaml.SafeLoader

CFN_SUFFIXES = {".yaml", ".yml", ".json", ".template"}
_SHORT_FORMS = [
    "Ref",
    "Condition",
    "GetAtt",
    "Sub",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "Join",
    "Select",
    "Split",
    "FindInMap",
    "GetAZs",
    "ImportValue",
    "Base64",
    "Cidr",
    "Transform",
    "Length",
    "ToJsonString",
    "ForEach",
]


class TemplateLoader(_BaseLoader):
    """SafeLoader that turns !Ref / !GetAtt / ... into their long forms."""


def _construct_short_form(name: str):
    key = name if name in ("Ref", "Condition") else f"Fn::{name}"

    def construct(loader: yaml.Loader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {key: value}

    return construct


for _name in _SHORT_FORMS:
    TemplateLoader.add_constructor(f"!{_name}", _construct_short_form(_name))


@dataclass
class Loaded:
    """A parsed file: data when it parsed, error (and line) when it did not."""

    path: str
    data: Any = None
    error: str | None = None
    line: int | None = None


def is_template(data: Any) -> bool:
    return isinstance(data, dict) and ("Resources" in data or "AWSTemplateFormatVersion" in data)


def load_template(path: Path) -> Loaded:
    """Parse a candidate template file. Multi-document YAML is not a template and loads as None."""
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return Loaded(name, error=f"cannot read file: {exc.strerror or exc}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Loaded(name, error=f"not valid UTF-8 (byte {exc.start})")
    if not text.strip():
        return Loaded(name)
    if path.suffix == ".json" or text.lstrip().startswith("{"):
        try:
            return Loaded(name, data=json.loads(text))
        except json.JSONDecodeError as exc:
            if path.suffix == ".json":
                return Loaded(name, error=f"invalid JSON: {exc.msg}", line=exc.lineno)
    try:
        documents = list(yaml.load_all(text, Loader=TemplateLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        return Loaded(name, error=f"invalid YAML: {problem}", line=mark.line + 1 if mark else None)
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        return Loaded(name, error=f"invalid YAML: {' '.join(str(exc).split())[:200]}")
    if len(documents) != 1:
        return Loaded(name)
    return Loaded(name, data=documents[0])
