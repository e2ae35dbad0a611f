"""Locate the data files shipped with the package (catalogue, schemas, policies)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any


def pack_path(package: str, name: str) -> Path:
    """Path of a data file inside one of netguard's data packages, in a checkout or a wheel."""
    return Path(str(resources.files(package).joinpath(name)))


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load a JSON Schema from schemas/ once per process."""
    return json.loads(pack_path("netguard.schemas", name).read_text(encoding="utf-8"))
