"""A Terraform module as Checkov renders it: blocks with their (variable-resolved) attributes.

Checkov expands count and for_each when it can resolve them, leaves the expression as a string when
it cannot, and keeps count = 0 blocks with their count. References remain strings such as
`aws_vpc.main["0"].id` or `${element(${aws_eip.nat[*].id},1)}`; this module turns them into targets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

_REF = re.compile(
    r"(?<![\w.\"-])(?P<data>data\.)?(?P<type>aws_[a-z0-9_]+)\.(?P<name>[A-Za-z_][\w-]*)"
    r"(?P<index>\[[^\]]*\])?(?P<splat>\.\*)?(?:\.(?P<attr>[A-Za-z_]\w*))?"
)
_ELEMENT = re.compile(
    r"element\(\s*\$?\{?(?P<ref>(?:data\.)?aws_[a-z0-9_]+\.[A-Za-z_][\w-]*(?:\[\*\]|\.\*)\.[A-Za-z_]\w*)\}?\s*,\s*(?P<n>\d+)\s*\)"
)


@dataclass(frozen=True)
class Target:
    """What a reference points at: a block base address, an index (or None for all), an attribute."""

    base: str
    index: str | None
    attribute: str | None


@dataclass(eq=False)
class Block:
    kind: str  # "resource" or "data"
    type: str
    address: str  # as Checkov reports it, e.g. aws_vpc.main[0] or data.aws_caller_identity.me
    base: str  # address without the instance index
    index: str | None
    config: Mapping[str, Any]
    file: str
    line: int
    count: Any = None  # None when unconditional; else the unresolved expression or int

    @property
    def exists(self) -> bool:
        return not (isinstance(self.count, int) and self.count <= 0)

    @property
    def conditional(self) -> str | None:
        """The unresolved count/for_each expression that decides whether the block exists."""
        return self.count if isinstance(self.count, str) else None

    def attr(self, name: str) -> Any:
        """An attribute value with Checkov's one-element list wrapping removed."""
        return unwrap(self.config.get(name))

    @property
    def existence(self) -> str | None:
        """The source count/for_each expression when it is not a plain number, else None.

        Checkov renders `count = var.on ? 1 : 0` with the variable's default, which would hide that
        the block may not exist; the source text keeps that visible.
        """
        for key in ("count", "for_each"):
            raw = self.raw_expression(key)
            if raw is not None and not raw.strip().isdigit():
                return raw.strip()
        return self.conditional

    def raw_expression(self, name: str) -> str | None:
        """The source text of a one-line `name = ...` attribute, before Checkov rendered it.

        Checkov renders an unset variable of list type as [], which would read as "no values";
        the source text tells an empty literal from an unknown value.
        """
        lines = _source_lines(self.file)
        end = int(self.config.get("__end_line__", 0) or 0)
        pattern = re.compile(rf"^\s*{re.escape(name)}\s*=\s*(.+?)\s*$")
        for text in lines[max(self.line - 1, 0) : end]:
            match = pattern.match(text)
            if match:
                return match.group(1)
        return None

    def blocks(self, name: str) -> list[Mapping[str, Any]]:
        value = self.config.get(name)
        if isinstance(value, list):
            return [v for v in value if isinstance(v, Mapping)]
        return [value] if isinstance(value, Mapping) else []


@lru_cache(maxsize=64)
def _source_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def unwrap(value: Any) -> Any:
    """Remove Checkov's one-element list around an attribute value."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def _normal_index(raw: str | None) -> str | None:
    if not raw:
        return None
    inner = raw[1:-1].strip()
    if inner == "*":
        return "*"
    if inner.startswith('"') and inner.endswith('"'):
        inner = inner[1:-1]
    if inner.isdigit():
        return f"[{inner}]"
    if inner in ("count.index", "each.key") or not inner:
        return "*"
    return f'["{inner}"]'


def references(value: Any) -> Iterator[Target]:
    """Targets referenced anywhere inside a rendered attribute value."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not str(key).startswith("__"):
                yield from references(item)
        return
    if isinstance(value, list):
        for item in value:
            yield from references(item)
        return
    if not isinstance(value, str):
        return
    claimed: list[tuple[int, int]] = []
    for match in _ELEMENT.finditer(value):
        inner = next(_REF.finditer(match.group("ref")))
        base = f"{inner.group('data') or ''}{inner.group('type')}.{inner.group('name')}"
        claimed.append(match.span())
        yield Target(base, f"@{match.group('n')}", inner.group("attr"))
    for match in _REF.finditer(value):
        if any(start <= match.start() < end for start, end in claimed):
            continue
        base = f"{match.group('data') or ''}{match.group('type')}.{match.group('name')}"
        index = "*" if match.group("splat") else _normal_index(match.group("index"))
        yield Target(base, index, match.group("attr"))


@dataclass
class Module:
    """The blocks of one module instance."""

    blocks: list[Block] = field(default_factory=list)

    def of_type(self, *types: str, kind: str = "resource") -> list[Block]:
        return [b for b in self.blocks if b.kind == kind and b.type in types and b.exists]

    def instances(self, base: str) -> list[Block]:
        return [b for b in self.blocks if b.base == base and b.exists]

    def resolve(self, target: Target) -> list[Block]:
        """Blocks a reference target can denote."""
        candidates = self.instances(target.base)
        if target.index in (None, "*"):
            return candidates
        if target.index.startswith("@"):
            indexed = sorted(
                (b for b in candidates if b.index and b.index[1:-1].isdigit()), key=lambda b: int(b.index[1:-1])
            )
            if not indexed:
                return candidates
            return [indexed[int(target.index[1:]) % len(indexed)]]
        exact = [b for b in candidates if b.index == target.index]
        if exact:
            return exact
        return [b for b in candidates if b.index is None]


def block_from_vertex(attributes: Mapping[str, Any]) -> Block | None:
    """A Block from one Checkov graph vertex's attributes, or None for other block kinds."""
    kind = attributes.get("block_type_")
    if kind not in ("resource", "data"):
        return None
    config = attributes.get("config_") or {}
    if not isinstance(config, Mapping) or len(config) != 1:
        return None
    type_name = next(iter(config))
    inner = config[type_name]
    if not isinstance(inner, Mapping) or len(inner) != 1:
        return None
    name = next(iter(inner))
    body = inner[name]
    if not isinstance(body, Mapping):
        return None
    bare, index = name, None
    if "[" in name and name.endswith("]"):
        bare = name[: name.index("[")]
        index = _normal_index(name[name.index("[") :])
    prefix = "data." if kind == "data" else ""
    count = unwrap(body.get("count")) if "count" in body else None
    if count is None and "for_each" in body:
        count = unwrap(body.get("for_each"))
        if not isinstance(count, str):
            count = None
        elif not count.strip():
            count = 0
    if isinstance(count, str) and count.strip().isdigit():
        count = int(count)
    if isinstance(count, bool):
        count = int(count)
    return Block(
        kind=kind,
        type=str(type_name),
        address=f"{prefix}{type_name}.{name}",
        base=f"{prefix}{type_name}.{bare}",
        index=index,
        config=body,
        file=str(attributes.get("file_path_", "")),
        line=int(body.get("__start_line__", 0) or 0),
        count=count,
    )
