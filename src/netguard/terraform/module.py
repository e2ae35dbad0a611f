"""A Terraform module as netguard renders it: block instances with their values and references.

Each resource or data block becomes one instance per count index or for_each key (`aws_eip.nat[1]`,
`aws_vpc.main["a"]`). A block whose count/for_each netguard cannot evaluate stays one unexpanded
instance (`aws_vpc.main`) that stands for all of them. Values are evaluated lazily from the parsed
expressions.

References are found by evaluating too: in a second scope every resource attribute evaluates to a
token naming the instance (`aws_eip.nat[1]` . `id`), so locals, element(), splats, conditionals and
for-expressions resolve exactly as Terraform would resolve them. Where the value stays unknown, the
references written in the expression (through locals) count, each standing for any instance.
"""

from __future__ import annotations

import re
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
    ref_scope: Any  # the same, with resource attributes as reference tokens
    existence: str | None = None  # the count/for_each source text when it is not a plain number
    most: int | None = None  # for an unexpanded block, the most instances its count can make, if known
    count_raw: Any = None  # the count or for_each expression (source text), when there is one
    count_kind: str = ""  # "count" or "for_each"
    each_source: str | None = None  # base address, when for_each iterates over a whole resource

    @property
    def module_path(self) -> str:
        """`module.vpc.` for a block of a called module, "" in the root."""
        return getattr(self.scope, "module_path", "")

    @property
    def base(self) -> str:
        return f"{self.module_path}{'data.' if self.kind == 'data' else ''}{self.type}.{self.name}"

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
        flat: list[Any] = []
        for item in items:  # blocks come as a list of objects; the attribute form as a list in that list
            flat.extend(item if isinstance(item, list) else [item])
        for dynamic in self.body.get("dynamic") or []:  # `dynamic "name" { content { ... } }`
            generator = dynamic.get(name) if isinstance(dynamic, Mapping) else None
            if isinstance(generator, Mapping):
                content = generator.get("content")
                flat.extend(content if isinstance(content, list) else [content])
        return [item for item in flat if isinstance(item, Mapping)]

    def targets(self, raw: Any) -> Iterator[Target]:
        """The resources and data sources an expression refers to, resolved for this instance."""
        if raw is None:
            return
        value = expr.evaluate(raw, self.ref_scope)
        yield from _tokens(value)
        if not expr.is_known(value):
            yield from self._written_targets(raw, set())

    def _written_targets(self, raw: Any, seen: set[str], scope: Any = None) -> Iterator[Target]:
        """References as written, following locals, module inputs and module outputs; the fallback
        when evaluation cannot decide."""
        scope = scope or self.scope
        for ref in expr.references(raw):
            name = ref.parts[0] if ref.parts and isinstance(ref.parts[0], str) else None
            if name is None:
                continue
            key = f"{getattr(scope, 'module_path', '')}{ref.root}.{name}"
            if key in seen:
                continue
            if ref.root == "local" and name in scope.local_values:
                seen.add(key)
                yield from self._written_targets(scope.local_values[name], seen, scope)
                continue
            if ref.root == "var" and getattr(scope, "inputs", None) and name in scope.inputs.raws:
                seen.add(key)  # a module input: the caller's expression, in the caller's scope
                yield from self._written_targets(scope.inputs.raws[name], seen, scope.inputs.caller)
                continue
            if ref.root == "module" and getattr(scope, "calls", None) and name in scope.calls:
                child = scope.calls[name]
                output = next((p for p in ref.parts[1:] if isinstance(p, str) and not _is_index(p)), None)
                if output in child.outputs:
                    seen.add(key)
                    yield from self._written_targets(child.outputs[output], seen, child.scope)
                continue
            if ref.root == "each" and self.each_source and ref.parts[:1] == ("value",):
                attribute = ref.parts[1] if len(ref.parts) > 1 and isinstance(ref.parts[1], str) else None
                yield Target(self.each_source, self.index or "*", attribute)
                continue
            target = self._target(ref, getattr(scope, "module_path", ""))
            if target:
                yield target

    def _target(self, ref: Any, module_path: str = "") -> Target | None:
        parts = list(ref.parts)
        prefix = module_path
        root = ref.root
        if root == "data":
            if len(parts) < 2 or not isinstance(parts[0], str):
                return None
            prefix, root = f"{module_path}data.", parts.pop(0)
        if root in _NOT_RESOURCES or not parts or not isinstance(parts[0], str):
            return None
        base = f"{prefix}{root}.{parts.pop(0)}"
        index: str | None = None
        if parts and _is_index(parts[0]):
            index = self._index(parts.pop(0))
        attribute = next((p for p in parts if isinstance(p, str) and not _is_index(p)), None)
        return Target(base, index, attribute)

    def _index(self, part: Any) -> str:
        """[0] / ["a"] for a literal or evaluable index, "*" for a splat or an index netguard cannot know."""
        if part is expr.SPLAT:
            return "*"
        key = expr.evaluate("${" + part.text + "}", self.scope) if isinstance(part, expr.Wildcard) else part
        if isinstance(key, bool) or not isinstance(key, (int, str)):
            return "*"
        return index_text(key)


_NOT_RESOURCES = {"var", "local", "count", "each", "path", "terraform", "self", "module"}
_TOKEN = re.compile("\x1e([^\x1e\x1f]+)\x1f([^\x1e]*)\x1e")
_ADDRESS = re.compile(r"^((?:module\.[^.\[]+\.)*(?:data\.)?[^.\[]+\.[^.\[]+)(\[.*\])?$")


class Symbol(dict):
    """A resource instance in the reference scope: every attribute reads as a token naming it."""

    __slots__ = ("address",)

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def __missing__(self, key: Any) -> str:
        return f"\x1e{self.address}\x1f{key}\x1e"


def _tokens(value: Any) -> Iterator[Target]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            for match in _TOKEN.finditer(item):
                address = _ADDRESS.match(match.group(1))
                if address:
                    yield Target(address.group(1), address.group(2), match.group(2) or None)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict) and not isinstance(item, Symbol):
            stack.extend(item.values())


class Attributes(dict):
    """A resource instance in the value scope: an argument set in its block reads as its value (as in
    Terraform, an argument's attribute is what was configured); anything else is unknown."""

    __slots__ = ("block", "busy")

    def __init__(self, block: Block) -> None:
        super().__init__()
        self.block = block
        self.busy: set[Any] = set()

    def __missing__(self, key: Any) -> Any:
        if key not in self.block.body or key in self.busy or str(key).startswith("__"):
            return expr.UNKNOWN  # computed (id, arn), or a reference cycle
        self.busy.add(key)
        try:
            return self.block.attr(key)
        finally:
            self.busy.discard(key)


@dataclass
class ModuleBindings(expr.Bindings):
    """Module bindings in which resources and data sources evaluate to their instances: Attributes in
    the value scope, Symbols in the reference scope. Until the module is complete, they are unknown."""

    module: Any = None
    tokens: bool = False
    module_path: str = ""  # "module.vpc." in a called module
    calls: dict[str, Any] = field(default_factory=dict)  # module calls of this module, by name
    inputs: Any = None  # the Inputs a caller passed, for a called module
    call_site: str | None = None  # the root module's `module` block (file:line) this instance comes from

    def lookup(self, root: str, path: list[str | int]) -> Any:
        if root == "module" and path and isinstance(path[0], str) and path[0] in self.calls:
            if self.module is None or not self.module.complete:
                return expr.UNKNOWN
            child = self.calls[path[0]]
            rest = [p for p in path[1:] if isinstance(p, str)]  # an instance key of a counted call is skipped
            if not rest or rest[0] not in child.outputs:
                return expr.UNKNOWN
            value = expr.evaluate(child.outputs[rest[0]], child.ref_scope if self.tokens else child.scope)
            for key in rest[1:]:
                value = value[key]
            return value
        if root in _NOT_RESOURCES or self.module is None or not self.module.complete:
            return super().lookup(root, path)
        if root == "data":
            if len(path) < 2 or not all(isinstance(p, str) for p in path[:2]):
                return expr.UNKNOWN
            base, rest = f"{self.module_path}data.{path[0]}.{path[1]}", path[2:]
        elif path and isinstance(path[0], str):
            base, rest = f"{self.module_path}{root}.{path[0]}", path[1:]
        else:
            return expr.UNKNOWN
        value = self.module.instances_of(base, self.tokens)
        for key in rest:
            if value is expr.UNKNOWN:
                break
            value = value[key]  # a missing instance raises, which evaluate() turns into UNKNOWN
        return value


class Inputs(Mapping):
    """A called module's variables: what the call passes, evaluated in the caller's scope when read
    (so resources of the caller resolve once the module is complete), else the variable's default."""

    def __init__(self, raws: dict[str, Any], caller: Any, defaults: Mapping[str, Any], ref_caller: Any = None) -> None:
        self.raws = raws
        self.caller = caller
        self.ref_caller = ref_caller  # the caller's reference scope, for the child's reference scope
        self.defaults = defaults
        self._memo: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name in self._memo:
            return self._memo[name]
        if name not in self.raws:
            return self.defaults[name]
        value = expr.evaluate(self.raws[name], self.caller)
        if self.caller.module is not None and self.caller.module.complete:
            self._memo[name] = value
        return value

    def __iter__(self) -> Iterator[str]:
        return iter({*self.defaults, *self.raws})

    def __len__(self) -> int:
        return len({*self.defaults, *self.raws})


@dataclass
class Call:
    """One module call as the caller sees it: the child's scopes and its output expressions."""

    scope: Any
    ref_scope: Any
    outputs: dict[str, Any]


def _is_index(part: Any) -> bool:
    """An index step (`[0]`, `["a"]`, `[count.index]`, `[*]`) rather than an attribute name."""
    return isinstance(part, (int, expr.Key, expr.Wildcard)) and not isinstance(part, bool)


@dataclass
class Module:
    """The block instances of one module folder, indexed by base address and type."""

    blocks: list[Block] = field(default_factory=list)
    _by_base: dict[str, list[Block]] = field(default_factory=lambda: defaultdict(list), repr=False)
    _by_type: dict[tuple[str, str], list[Block]] = field(default_factory=lambda: defaultdict(list), repr=False)
    _by_index: dict[tuple[str, str | None], list[Block]] = field(default_factory=lambda: defaultdict(list), repr=False)

    _instances: dict[tuple[str, bool], Any] = field(default_factory=dict, repr=False)
    complete: bool = False  # set once every block is added: only then do references resolve
    problems: list[Any] = field(default_factory=list)  # InputErrors the rules met (a policy file missing)
    variables: dict[str, Any] = field(default_factory=dict)  # var.* values under the defaults
    locals_raw: dict[str, Any] = field(default_factory=dict)  # local.* expressions, unevaluated

    def add(self, block: Block) -> None:
        self.blocks.append(block)
        self._by_base[block.base].append(block)
        self._by_type[(block.kind, block.type)].append(block)
        self._by_index[(block.base, block.index)].append(block)

    def instances_of(self, base: str, tokens: bool) -> Any:
        """What `base` evaluates to: one instance, a list or map of them (Symbols when tokens, else
        Attributes), or UNKNOWN when it is not declared here or its instances are not known."""
        key = (base, tokens)
        if key not in self._instances:
            instances = self._by_base.get(base, [])

            def one(block: Block) -> Any:
                return Symbol(block.address) if tokens else Attributes(block)

            if (
                not instances
                or any(b.key is None and b.existence for b in instances)
                or len({b.file for b in instances}) > 1
            ):
                value: Any = expr.UNKNOWN  # not here, instances unknown, or declared twice
            elif len(instances) == 1 and instances[0].key is None:
                value = one(instances[0])
            elif all(isinstance(b.key, int) for b in instances):
                value = [one(b) for b in sorted(instances, key=lambda b: b.key)]
            else:
                value = {str(b.key): one(b) for b in instances}
            self._instances[key] = value
        return self._instances[key]

    def of_type(self, *types: str, kind: str = "resource") -> list[Block]:
        return [b for t in types for b in self._by_type.get((kind, t), [])]

    def resolve(self, target: Target) -> list[Block]:
        """Blocks a reference can denote: one instance when the index is known, else every instance."""
        if target.index in (None, "*"):
            return self._by_base.get(target.base, [])
        exact = self._by_index.get((target.base, target.index))
        if exact:
            return exact
        # An unexpanded block stands for all its instances: `x[0]` names all of them only when its
        # count can make at most one; otherwise the reference covers some instance, not every one.
        position = target.index[1:-1]
        return [
            block
            for block in self._by_index.get((target.base, None), [])
            if block.most is not None and position.isdigit() and int(position) < block.most <= 1
        ]

    def spans(self) -> dict[str, Spans]:
        """Per file, the lines each block is written on (for suppression comments)."""
        files: dict[str, Spans] = {}
        for block in self.blocks:
            files.setdefault(block.file, Spans()).resources[block.base] = (block.line, block.end_line)
        return files
