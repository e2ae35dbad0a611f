"""The IAM reference data (services, their actions and the resource types each action is authorized
on) as cfn-lint ships it in cfnlint/data/AdditionalSpecs/Policies.json.

The file is found without importing cfn-lint: the import takes half a second, and a replay would pay
it again in every worker process for the sake of one JSON file.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

import orjson


@cache
def iam_reference() -> dict[str, Any]:
    """Services by IAM prefix, as Policies.json holds them. Raises OSError when cfn-lint's data is
    missing (a broken install) and ValueError when it is not a JSON object."""
    spec = importlib.util.find_spec("cfnlint")
    if spec is None or not spec.submodule_search_locations:
        raise OSError("cfn-lint is not installed: its IAM reference data is needed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "AdditionalSpecs" / "Policies.json"
    data = orjson.loads(path.read_bytes())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return data
