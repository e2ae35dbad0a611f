"""A Terraform module as netguard renders it: block instances with their values and references.

Each resource or data block becomes one instance per count index or for_each key (`aws_eip.nat[1]`,
`aws_vpc.main["a"]`). A block whose count/for_each netguard cannot evaluate stays one unexpanded
instance (`aws_vpc.main`) that stands for all of them. Values are evaluated lazily from the parsed
expressions; references are read from the expressions themselves, so `aws_vpc.this[count.index].id`
in instance 1 points at `aws_vpc.this[1]`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from netguard.scan.suppress import Spans
from netguard.terraform import expressions as expr


DATA_SOURCES = {"aws_iam_policy_document"}  # catalogue types that are data sources, not resources


@dataclass(frozen=True)
class Target:
    """What a reference points at: a block base address, an index (None or "*" for any), an attribute."""

    base: str
    index: str | None
    attribute: str | None


def unwrap(value: Any) -> Any:
    """hcl2 wraps every attribute value of a block in a one-element list."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def index_text(key: Any) -> str:
    """Terraform's address form of an instance key: [0] or ["a"]."""
    return f"[{key}]" if isinstance(key, int) and not isinstance(key, bool) else f'["{key}"]'


@dataclass(eq=False)
class Block:
    """One instance of a resource or data block."""

    kind: str  # "resource" or "data"
    type: str
    name: str
    key: Any  # the count index or for_each key; None when not expanded
    body: Mapping[str, Any]  # the parsed block, attribute values as hcl2 gives them
    file: str
    line: int
    end_line: int
    scope: Any  # the evaluation scope of this instance (count.index, each.key/value)
    existence: str | None = None  # the count/for_each source text when it is not a plain number
    each_source: str | None = None  # base address, when for_each iterates over a whole resource

    @property
    def base(self) -> str:
        return f"{'data.' if self.kind == 'data' else ''}{self.type}.{self.name}"

    @property
    def index(self) -> str | None:
        return None if self.key is None else index_text(self.key)

    @property
    def address(self) -> str:
        return self.base + (self.index or "")

    def raw(self, name: str) -> Any:
        """The unevaluated value of an attribute (None when not set)."""
        return unwrap(self.body.get(name))

    def has(self, name: str) -> bool:
        """True when the attribute is set to something other than null or an empty string."""
        raw = self.raw(name)
        return raw is not None and self.value(raw) not in (None, "")

    def attr(self, name: str) -> Any:
        """The evaluated value of an attribute; expr.UNKNOWN when netguard cannot know it."""
        return self.value(self.raw(name))

    def value(self, raw: Any) -> Any:
        return expr.evaluate(raw, self.scope)

    def nested(self, name: str) -> list[Mapping[str, Any]]:
        """Nested blocks (or an attribute list of objects) of that name, unevaluated."""
        value = self.body.get(name)
        items = value if isinstance(value, list) else [value]
        return [item for item in items if isinstance(item, Mapping)]

    def targets(self, raw: Any) -> Iterator[Target]:
        """The resources and data sources an expression refers to, resolved for this instance."""
        for ref in expr.references(raw):
            if ref.root == "each" and self.each_source and ref.parts[:1] == ("value",):
                attribute = ref.parts[1] if len(ref.parts) > 1 and isinstance(ref.parts[1], str) else None
                yield Target(self.each_source, self.index or "*", attribute)
                continue
            target = self._target(ref)
            if target:
                yield target

    def _target(self, ref: Any) -> Target | None:
        parts = list(ref.parts)
        prefix = ""
        root = ref.root
        if root == "data":
            if len(parts) < 2 or not isinstance(parts[0], str):
                return None
            prefix, root = "data.", parts.pop(0)
        if not root.startswith("aws_") or not parts or not isinstance(parts[0], str):
            return None
        base = f"{prefix}{root}.{parts.pop(0)}"
        index: str | None = None
        if parts and not isinstance(parts[0], str) or (parts and expr.is_index(parts[0])):
            index = self._index(parts.pop(0))
        attribute = next((p for p in parts if isinstance(p, str) and not expr.is_index(p)), None)
        return Target(base, index, attribute)

    def _index(self, part: Any) -> str:
        """[0] / ["a"] for a literal or evaluable index, "*" for a splat or an index netguard cannot know."""
        key = expr.index_value(part, self.scope)
        if key is expr.UNKNOWN or key is None:
            return "*"
        return index_text(key)


@dataclass
class Module:
    """The block instances of one module folder, indexed by base address and type."""

    blocks: list[Block] = field(default_factory=list)
    _by_base: dict[str, list[Block]] = field(default_factory=lambda: defaultdict(list), repr=False)
    _by_type: dict[tuple[str, str], list[Block]] = field(default_factory=lambda: defaultdict(list), repr=False)

    def add(self, block: Block) -> None:
        self.blocks.append(block)
        self._by_base[block.base].append(block)
        self._by_type[(block.kind, block.type)].append(block)

    def of_type(self, *types: str, kind: str = "resource") -> list[Block]:
        return [b for t in types for b in self._by_type.get((kind, t), [])]

    def resolve(self, target: Target) -> list[Block]:
        """Blocks a reference can denote: one instance when the index is known, else every instance."""
        candidates = self._by_base.get(target.base, [])
        if target.index in (None, "*"):
            return candidates
        exact = [b for b in candidates if b.index == target.index]
        return exact or [b for b in candidates if b.key is None]

    def spans(self) -> dict[str, Spans]:
        """Per file, the lines each block is written on (for suppression comments)."""
        files: dict[str, Spans] = {}
        for block in self.blocks:
            files.setdefault(block.file, Spans()).resources[block.base] = (block.line, block.end_line)
        return files
