"""A Terraform plan or state as JSON (`terraform show -json`, Terraform or OpenTofu) rendered as a Module,
so the rules written for .tf files judge what a plan will create, unchanged.

A plan knows more than the source: count and for_each are expanded, variables evaluated, registry
modules included, so each resource instance carries its planned values under its plan address
(`module.vpc.aws_vpc.this[0]`). What it does not know is what only apply decides: the id of a new VPC
is "known after apply". The rules need exactly those links (a flow log's vpc_id is the VPC's id), so
an unknown value stands for the references its configuration expression makes, followed through
module outputs and inputs. A value that is known links to the resource whose id (or allocation id,
public IP, account id) it equals, which is how a plan against existing infrastructure reads.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from netguard.config import ScanConfig
from netguard.errors import InputError
from netguard.terraform.expressions import UNKNOWN
from netguard.terraform.loader import LoadedModule
from netguard.terraform.module import Block, Module, Target

CONTENT_KEYS = ("planned_values", "resource_changes", "values")
LINK_ATTRIBUTES = ("id", "arn", "allocation_id", "public_ip", "account_id")  # what other resources refer to
ANY_ATTRIBUTE = LINK_ATTRIBUTES  # for a reference whose attribute the plan does not record
MAX_PROBLEMS = 20
MAX_FOLLOW = 64  # module inputs and outputs followed through, one within another

_STEP = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_-]*)|(\[(?:"(?:[^"\\]|\\.)*"|[^\]"]*)\])')
_VERSION = re.compile(r"(\d+)\.(\d+)")
_NOT_RESOURCES = {"var", "local", "count", "each", "path", "terraform", "self", "module", "data"}
_EXPRESSION_KEYS = {"references", "constant_value"}


def is_plan(data: Any) -> bool:
    """A plan or state by its content, whatever the file is called."""
    return (
        isinstance(data, dict)
        and "terraform_version" in data
        and "format_version" in data
        and any(key in data for key in CONTENT_KEYS)
    )


class Pending(str):
    """A value known only after apply; it reads as that in messages, and carries the references its
    configuration expression makes (relative to the module the resource is in)."""

    references: tuple[str, ...]

    def __new__(cls, references: tuple[str, ...]) -> Pending:
        # Terraform lists a reference then its shorter forms (`aws_vpc.main.id`, `aws_vpc.main`): show the first
        longest = [r for i, r in enumerate(references) if not (i and references[i - 1].startswith((f"{r}.", f"{r}[")))]
        shown = f"known after apply, from {', '.join(longest[:3])}" if references else "known after apply"
        pending = super().__new__(cls, f"({shown})")
        pending.references = references
        return pending


@dataclass(frozen=True)
class _Context:
    """Where references are resolved: a module instance (`module.vpc["a"].`), its configuration path,
    and for a for_each resource or module call, what `each.value` is (the for_each references)."""

    prefix: str
    call_path: tuple[str, ...]
    own_index: str | None = None
    each_refs: tuple[str, ...] = ()
    each_context: _Context | None = None


@dataclass(eq=False)
class PlanBlock(Block):
    """One resource or data instance of a plan: values as planned (no expressions to evaluate), those
    unknown until apply as Pending references."""

    plan_base: str = ""
    plan_index: str | None = None
    plan: _Plan | None = None
    context: _Context | None = None

    @property
    def base(self) -> str:
        return self.plan_base

    @property
    def index(self) -> str | None:
        return self.plan_index

    @property
    def address(self) -> str:
        return self.plan_base + (self.plan_index or "")

    def raw(self, name: str) -> Any:
        return self.body.get(name)

    def value(self, raw: Any) -> Any:
        """Planned values are final: a string is never a template; only Pending parts are unknown."""
        if isinstance(raw, Pending):
            return UNKNOWN
        if isinstance(raw, list):
            return [self.value(item) for item in raw]
        if isinstance(raw, dict):
            return {key: self.value(item) for key, item in raw.items()}
        return raw

    def nested(self, name: str) -> list[Mapping[str, Any]]:
        """Nested blocks as the plan lists them; unset arguments (null, []) are left out, as in source."""
        value = self.body.get(name)
        items = value if isinstance(value, list) else [value]
        return [
            {key: item for key, item in entry.items() if item is not None and item != []}
            for entry in items
            if isinstance(entry, dict)
        ]

    def targets(self, raw: Any) -> Iterator[Target]:
        """Unknown parts by their configuration references; known strings by the resources they name."""
        if self.plan is None or self.context is None:
            return
        stack = [raw]
        while stack:
            item = stack.pop()
            if isinstance(item, Pending):
                yield from self.plan.resolve(item.references, self.context)
            elif isinstance(item, str):
                yield from self.plan.by_value.get(item, ())
            elif isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                stack.extend(item.values())


@functools.lru_cache(maxsize=1 << 16)
def _cached_steps(text: str) -> tuple[str, ...] | None:
    steps = _parse_steps(text)
    return None if steps is None else tuple(steps)


def _steps(text: str) -> list[str] | None:
    """_parse_steps, remembered: each address is split several times while a plan is read."""
    steps = _cached_steps(text)
    return None if steps is None else list(steps)


def _parse_steps(text: str) -> list[str] | None:
    """A reference or address as steps: names, and indexes with their brackets (`[0]`, `["a"]`)."""
    steps: list[str] = []
    position = 0
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None or match.end() == position:
            return None
        if match.group(1) and (text[position] == ".") != (position > 0):
            return None  # a name: first without a dot, then after one
        steps.append(match.group(1) or match.group(2))
        position = match.end()
    return steps


def _is_index(step: str) -> bool:
    return step.startswith("[")


def _references(expression: Any) -> tuple[str, ...] | None:
    """The references of one configuration expression; None when it is not an expression object."""
    if not isinstance(expression, dict) or not expression or not set(expression) <= _EXPRESSION_KEYS:
        return None
    references = expression.get("references")
    if not isinstance(references, list):
        return ()
    return tuple(r for r in references if isinstance(r, str))


def _configured_at(expressions: Any, path: tuple[str, ...]) -> Any:
    """What the configuration sets at `path`, for a value the plan does not know: None when nothing
    does (the provider computes it); Pending references where an expression sets it; nested blocks
    as written (a set of blocks holding an unknown is unknown as a whole in the plan, but its blocks
    are in the configuration). List positions are ignored: nested blocks may be sets, whose order the
    plan does not keep, so every block of that name counts, as the rules judge a resource by all."""
    above: list[str] = []
    covered = False
    nodes = [expressions]
    for step in path:
        following = []
        for node in nodes:
            for item in node if isinstance(node, list) else [node]:
                references = _references(item)
                if references is not None:  # an expression sets everything below it
                    above.extend(references)
                    covered = True
                elif isinstance(item, dict) and step in item:
                    following.append(item[step])
        nodes = following
    if not covered:
        if not nodes:
            return None
        if len(nodes) == 1:
            return _configured(nodes[0])
        if all(isinstance(node, list) for node in nodes):  # the same nested blocks in several blocks
            return _configured([item for node in nodes for item in node])
    found = above + [r for node in nodes for r in _all_references(node)]
    return Pending(tuple(dict.fromkeys(found)))


def _configured(node: Any) -> Any:
    """Configuration expressions as planned values: constants as they are, the rest Pending references."""
    references = _references(node)
    if references is not None:
        return node["constant_value"] if "constant_value" in node and not references else Pending(references)
    if isinstance(node, list):
        return [_configured(item) for item in node]
    if isinstance(node, dict):
        return {key: _configured(item) for key, item in node.items()}
    return None


def _all_references(node: Any) -> list[str]:
    found: list[str] = []
    stack = [node]
    while stack:
        item = stack.pop()
        references = _references(item)
        if references is not None:
            found.extend(references)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _with_unknowns(
    values: Any, unknown: Any, expressions: Any, path: tuple[str, ...], found: dict[tuple[str, ...], Any]
) -> Any:
    """Planned values with each part `after_unknown` marks replaced: by Pending references when the
    configuration sets it, by None when only the provider computes it (the user did not set it, as
    the rules read an unset argument). Without configuration, an unknown has no references."""
    if unknown is True:
        if expressions is None:
            return Pending(())
        if path not in found:  # shared: by every element of a list, every instance of the block
            found[path] = _configured_at(expressions, path)
        return found[path]
    if isinstance(unknown, dict):
        base = values if isinstance(values, dict) else {}
        changed = {}
        for key, below in unknown.items():
            if below is True or isinstance(below, (dict, list)):
                merged = _with_unknowns(base.get(key), below, expressions, (*path, str(key)), found)
                if merged is not base.get(key):
                    changed[key] = merged
        if not changed:
            return values
        out = dict(base)
        for key, merged in changed.items():
            if merged is None:
                out.pop(key, None)
            else:
                out[key] = merged
        return out
    if isinstance(unknown, list) and unknown:
        items = list(values) if isinstance(values, list) else []
        items += [None] * (len(unknown) - len(items))
        merged = [
            _with_unknowns(item, unknown[i], expressions, path, found) if i < len(unknown) else item
            for i, item in enumerate(items)
        ]
        unchanged = isinstance(values, list) and len(values) == len(merged)
        return values if unchanged and all(a is b for a, b in zip(merged, values, strict=True)) else merged
    return values


@dataclass
class _Plan:
    """What references resolve against: configuration by module path, module instances, known values."""

    modules: dict[tuple[str, ...], Mapping[str, Any]] = field(default_factory=dict)  # call path -> config
    instances: dict[str, dict[str, None]] = field(default_factory=dict)  # `<prefix>module.x` -> its instances
    by_value: dict[str, list[Target]] = field(default_factory=dict)  # known id/arn/... -> the attribute
    keys: set[tuple[str, str | None]] = field(default_factory=set)  # (base, index) of every instance
    _memo: dict[tuple[str, str, str], list[Target]] = field(default_factory=dict)

    def resolve(self, references: tuple[str, ...], context: _Context, depth: int = 0) -> list[Target]:
        """Targets of one expression's references. Terraform lists each reference with every shorter
        form (`aws_vpc.main[0].id`, `aws_vpc.main[0]`, `aws_vpc.main`): the longest says the index and
        attribute. A resource named only whole was indexed by an expression or splatted
        (`aws_vpc.main[count.index].id` is recorded as `aws_vpc.main`, `count.index`): any attribute, and
        this instance's own index when count.index or each.key is in the expression and the resource has
        that instance (the usual `[count.index]`, `element(..., count.index)`), else any instance."""
        named: dict[str, set[tuple[str | None, str]]] = {}
        whole: dict[str, str | None] = {}
        calls: dict[str, tuple[set[str], set[str]]] = {}
        found: list[Target] = []
        deeper = depth < MAX_FOLLOW
        for reference in references:
            steps = _steps(reference) or [""]
            root = steps[0]
            if root == "var" and len(steps) > 1 and deeper:
                found.extend(self._variable(context, steps[1], depth))
            elif root == "each" and steps[1:2] == ["value"] and deeper:
                found.extend(self._each_value(context, steps[2] if len(steps) > 2 else None, depth))
            elif root == "module" and len(steps) > 1:
                keys, outputs = calls.setdefault(steps[1], (set(), set()))
                if len(steps) > 2 and _is_index(steps[2]):
                    keys.add(steps[2])
                output = next((step for step in steps[2:] if not _is_index(step)), None)
                if output:
                    outputs.add(output)
            elif (root == "data" and len(steps) > 2) or (root not in _NOT_RESOURCES and len(steps) > 1):
                start = 3 if root == "data" else 2
                base = context.prefix + ".".join(steps[:start])
                rest = steps[start:]
                index = rest[0] if rest and _is_index(rest[0]) and rest[0] != "[*]" else None
                attribute = next((s for s in rest if not _is_index(s)), None)
                if attribute is None:
                    whole[base] = whole.get(base) or index
                else:
                    named.setdefault(base, set()).add((index, attribute))
        for base, pairs in named.items():
            found.extend(Target(base, index, attribute) for index, attribute in pairs)
        by_instance = context.own_index is not None and ("count.index" in references or "each.key" in references)
        for base, index in whole.items():
            if base not in named:
                if index is None and by_instance and (base, context.own_index) in self.keys:
                    index = context.own_index  # `aws_vpc.main[count.index]`: the index the plan omits
                found.extend(Target(base, index or "*", attribute) for attribute in ANY_ATTRIBUTE)
        for name, (keys, outputs) in calls.items():
            own = f"{context.prefix}module.{name}{context.own_index}."
            if not keys and by_instance and own in self.instances.get(f"{context.prefix}module.{name}", ()):
                keys = {str(context.own_index)}  # `module.vpc[count.index].vpc_id`, as for resources
            if deeper:
                found.extend(self._outputs(context, name, keys, outputs, depth))
        return found

    def _each_value(self, context: _Context, attribute: str | None, depth: int) -> list[Target]:
        """`each.value` under `for_each = aws_vpc.main` is this instance's VPC; otherwise it is whatever
        the for_each expression refers to."""
        outer = context.each_context or context
        refs = context.each_refs
        steps = (_steps(refs[0]) or []) if len(refs) == 1 else []
        if len(steps) == 2 and steps[0] not in _NOT_RESOURCES:
            base = outer.prefix + refs[0]
            return [Target(base, context.own_index or "*", a) for a in ([attribute] if attribute else ANY_ATTRIBUTE)]
        return self.resolve(refs, outer, depth + 1)

    def _variable(self, context: _Context, name: str, depth: int) -> list[Target]:
        """A module input: what the caller passes, resolved where the caller is."""
        if not context.call_path:
            return []  # a root variable: a value the plan knows, never a resource
        memo = ("var", context.prefix, name)
        if memo not in self._memo:
            self._memo[memo] = []  # a cycle resolves to nothing
            steps = _steps(context.prefix.rstrip(".")) or []
            key = steps[-1] if steps and _is_index(steps[-1]) else None
            parent = _join(steps[: len(steps) - (3 if key else 2)])
            parent_path = context.call_path[:-1]
            calls = _mapping(_mapping(self.modules.get(parent_path)).get("module_calls"))
            call = _mapping(calls.get(context.call_path[-1]))
            expression = _mapping(call.get("expressions")).get(name)
            outer = _Context(parent, parent_path)
            each = _references(call.get("for_each_expression")) or ()
            caller = _Context(parent, parent_path, key, each, outer)
            self._memo[memo] = self.resolve(_references(expression) or (), caller, depth + 1)
        return self._memo[memo]

    def _outputs(self, context: _Context, name: str, keys: set[str], outputs: set[str], depth: int) -> list[Target]:
        """A module call's outputs, in the called module instance(s); every output when the reference
        names none (`module.vpc[count.index].vpc_id` is recorded as `module.vpc`)."""
        path = (*context.call_path, name)
        declared = _mapping(_mapping(self.modules.get(path)).get("outputs"))
        call = f"{context.prefix}module.{name}"
        prefixes = [f"{call}{key}." for key in sorted(keys)] or list(self.instances.get(call, ())) or [f"{call}."]
        found: list[Target] = []
        for prefix in prefixes:
            for output in outputs or declared:
                memo = ("output", prefix, output)
                if memo not in self._memo:
                    self._memo[memo] = []  # a cycle resolves to nothing
                    references = _references(_mapping(declared.get(output)).get("expression")) or ()
                    self._memo[memo] = self.resolve(references, _Context(prefix, path), depth + 1)
                found.extend(self._memo[memo])
        return found


def _join(steps: list[str]) -> str:
    """Steps back to a module instance prefix: `module.a[0].module.b.` ("" for none)."""
    text = "".join(step if _is_index(step) else f".{step}" for step in steps).lstrip(".")
    return f"{text}." if text else ""


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _configuration(data: Mapping[str, Any], problems: list[str]) -> dict[tuple[str, ...], Mapping[str, Any]]:
    """Module configuration by call path (`()` the root, `("vpc",)` module.vpc), without recursion."""
    modules: dict[tuple[str, ...], Mapping[str, Any]] = {}
    configuration = data.get("configuration")
    if configuration is None:
        return modules
    if not isinstance(configuration, dict):
        problems.append("configuration is not an object")
        return modules
    root = configuration.get("root_module", {})
    stack: list[tuple[tuple[str, ...], Any]] = [((), root)]
    while stack:
        path, module = stack.pop()
        where = "configuration." + ".".join(["root_module", *(f"module_calls.{p}.module" for p in path)])
        if not isinstance(module, dict):
            problems.append(f"{where} is not an object")
            continue
        modules[path] = module
        resources = module.get("resources", [])
        if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
            problems.append(f"{where}.resources is not a list of objects")
        elif not all(isinstance(r.get(k), str) for r in resources for k in ("mode", "type", "name")):
            problems.append(f"{where}.resources: a resource without mode, type or name")
        calls = module.get("module_calls", {})
        if not isinstance(calls, dict):
            problems.append(f"{where}.module_calls is not an object")
            continue
        for name, call in calls.items():
            if not isinstance(call, dict):
                problems.append(f"{where}.module_calls.{name} is not an object")
            elif "module" in call:
                stack.append(((*path, str(name)), call["module"]))
    return modules


def _resource_configs(modules: dict[tuple[str, ...], Mapping[str, Any]]) -> dict[tuple, Mapping[str, Any]]:
    """(call path, mode, type, name) -> the resource's configuration."""
    found = {}
    for path, module in modules.items():
        resources = module.get("resources")
        for resource in resources if isinstance(resources, list) else []:
            if not isinstance(resource, dict):
                continue
            mode, type_name, name = (resource.get(k) for k in ("mode", "type", "name"))
            if isinstance(mode, str) and isinstance(type_name, str) and isinstance(name, str):
                found[(path, mode, type_name, name)] = resource
    return found


def _planned_resources(data: Mapping[str, Any], problems: list[str]) -> Iterator[tuple[Any, Any]]:
    """Every resource object of planned_values (or a state's values), through child_modules, with its values."""
    key = "planned_values" if "planned_values" in data else "values"
    top = data.get(key)
    if not isinstance(top, dict):
        problems.append(f"{key} is not an object")
        return
    stack: list[tuple[str, Any]] = [(f"{key}.root_module", top.get("root_module", {}))]
    while stack:
        where, module = stack.pop()
        if not isinstance(module, dict):
            problems.append(f"{where} is not an object")
            continue
        resources = module.get("resources", [])
        children = module.get("child_modules", [])
        if not isinstance(resources, list):
            problems.append(f"{where}.resources is not a list")
            resources = []
        if not isinstance(children, list):
            problems.append(f"{where}.child_modules is not a list")
            children = []
        yield from ((r, r.get("values", {}) if isinstance(r, dict) else None) for r in resources)
        label = module.get("address") if isinstance(module.get("address"), str) else where
        stack.extend((f"{label}.child_modules[{i}]", child) for i, child in reversed(list(enumerate(children))))


def _changes(data: Mapping[str, Any], problems: list[str]) -> dict[str, Mapping[str, Any]]:
    """resource_changes by address: the `change` of each (after_unknown, and after when planned_values
    are absent)."""
    changes = data.get("resource_changes", [])
    if not isinstance(changes, list):
        problems.append("resource_changes is not a list")
        return {}
    found = {}
    for number, change in enumerate(changes):
        if not isinstance(change, dict) or not isinstance(change.get("address"), str):
            problems.append(f"resource_changes[{number}] has no address")
        elif not isinstance(change.get("change"), dict):
            problems.append(f"resource_changes[{number}] ({change['address']}) has no change object")
        else:
            found[change["address"]] = change
    return found


def _from_changes(changes: dict[str, Mapping[str, Any]]) -> Iterator[tuple[Any, Any]]:
    """Resources as resource_changes plan them, for a plan without planned_values: what is deleted or
    forgotten (no `after`) is not planned. Each is the change object itself (its line is the finding's)."""
    for change in changes.values():
        if isinstance(change["change"].get("after"), dict):
            yield change, change["change"]["after"]


def _split(address: str, mode: str, type_name: str, name: str) -> tuple[str, str, str | None] | None:
    """(module instance prefix, base address, index) of a plan address, or None when it does not name
    the resource its fields say."""
    steps = _steps(address)
    local = ["data", type_name, name] if mode == "data" else [type_name, name]
    if not steps:
        return None
    index = steps[-1] if _is_index(steps[-1]) else None
    head = steps[:-1] if index else steps
    if head[-len(local) :] != local:
        return None
    module_steps = head[: -len(local)]
    position = 0
    while position < len(module_steps):  # module.NAME, optionally [KEY], again and again
        if module_steps[position] != "module" or position + 1 >= len(module_steps):
            return None
        position += 3 if position + 2 < len(module_steps) and _is_index(module_steps[position + 2]) else 2
    base = address[: len(address) - len(index)] if index else address
    prefix = base[: len(base) - len(".".join(local))]
    return prefix, base, index


def _provider_alias(config: Mapping[str, Any]) -> str | None:
    """`aws.peer` when the resource uses an aliased provider (the rules ask `provider`), else None."""
    key = config.get("provider_config_key")
    if not isinstance(key, str):
        return None
    local = key.rsplit(":", 1)[-1]
    return local if "." in local else None


def load_plan(path: str, data: Mapping[str, Any], config: ScanConfig) -> LoadedModule:
    """Render a plan or state (`terraform show -json`) as a Module of PlanBlocks; a malformed one is an
    InputError naming the file, never partly judged."""
    out = LoadedModule(None)
    version = data.get("format_version")
    match = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        return _failed(out, path, [f"format_version {version!r} is not a version"])
    if int(match.group(1)) > 1:
        return _failed(out, path, [f"format_version {version}: netguard reads plans of format 0.x and 1.x"])
    build = _Build(path)
    build.plan.modules = _configuration(data, build.problems)
    build.configs = _resource_configs(build.plan.modules)
    build.changes = _changes(data, build.problems) if "resource_changes" in data else {}
    if "planned_values" in data or "values" in data:
        resources = _planned_resources(data, build.problems)
    else:
        resources = _from_changes(build.changes)
    module = Module()
    seen: set[str] = set()
    for number, (resource, values) in enumerate(resources):
        block = build.block(resource, values, number)
        if block is None:
            continue
        if block.address in seen:
            build.problems.append(f"{block.address} is planned twice")
            continue
        seen.add(block.address)
        module.add(block)
    if build.problems:
        return _failed(out, path, build.problems)
    plan = build.plan
    for block in module.blocks:
        plan.keys.add((block.base, block.index))
        for attribute in LINK_ATTRIBUTES:
            value = block.body.get(attribute)
            if isinstance(value, str) and value and not isinstance(value, Pending):
                plan.by_value.setdefault(value, []).append(Target(block.base, block.index, attribute))
    module.complete = True
    out.module = module
    return out


def _failed(out: LoadedModule, path: str, problems: list[str]) -> LoadedModule:
    shown = "; ".join(problems[:MAX_PROBLEMS])
    more = f" (and {len(problems) - MAX_PROBLEMS} more)" if len(problems) > MAX_PROBLEMS else ""
    out.errors.append(InputError(path, f"not a well-formed Terraform plan: {shown}{more}"))
    out.failed.add(path)
    return out


@dataclass
class _Build:
    """One load's state. What thousands of instances share (a module instance's context, the Pending
    values of one configuration block) is worked out once, so the load stays linear in the file."""

    path: str
    plan: _Plan = field(default_factory=_Plan)
    configs: dict[tuple, dict[str, Any]] = field(default_factory=dict)
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    contexts: dict[str, _Context] = field(default_factory=dict)  # module instance prefix -> its context
    pending: dict[tuple, dict[tuple[str, ...], Any]] = field(default_factory=dict)  # config key -> path -> value

    def context(self, prefix: str) -> _Context:
        """The context of a module instance, registering it (and those above it) with the plan."""
        if prefix not in self.contexts:
            steps = _steps(prefix.rstrip(".")) or []
            path = tuple(steps[i + 1] for i, step in enumerate(steps) if step == "module" and i + 1 < len(steps))
            self.contexts[prefix] = _Context(prefix, path)
            for position, step in enumerate(steps):  # each module instance on the way: module.a[0].module.b
                if step == "module" and position + 1 < len(steps):
                    keyed = position + 2 < len(steps) and _is_index(steps[position + 2])
                    call = _join(steps[: position + 2])[:-1]
                    instance = _join(steps[: position + (3 if keyed else 2)])
                    self.plan.instances.setdefault(call, {})[instance] = None
        return self.contexts[prefix]

    def block(self, resource: Any, values: Any, number: int) -> PlanBlock | None:
        problems = self.problems
        if not isinstance(resource, dict):
            problems.append(f"resource {number} is not an object")
            return None
        address, mode, type_name, name = (resource.get(k) for k in ("address", "mode", "type", "name"))
        if not all(isinstance(v, str) for v in (address, mode, type_name, name)) or mode not in ("managed", "data"):
            shown = address if isinstance(address, str) else number
            problems.append(f"resource {shown}: no address, mode, type or name")
            return None
        if not isinstance(values, dict):
            problems.append(f"{address}: values is not an object")
            return None
        split = _split(address, mode, type_name, name)
        if split is None:
            problems.append(f"{address}: the address does not name {type_name}.{name}")
            return None
        prefix, base, index = split
        outer = self.context(prefix)
        key = (outer.call_path, mode, type_name, name)
        resource_config = self.configs.get(key)
        change = self.changes.get(address)
        unknown = change["change"].get("after_unknown") if change else None
        if unknown not in (None, False) and not isinstance(unknown, dict):
            problems.append(f"{address}: after_unknown is not an object")
            return None
        body = values
        if unknown:
            expressions = resource_config.get("expressions", {}) if resource_config is not None else None
            body = _with_unknowns(values, unknown, expressions, (), self.pending.setdefault(key, {}))
        each_refs: tuple[str, ...] = ()
        if resource_config is not None:
            alias = _provider_alias(resource_config)
            if alias:
                body = {**body, "provider": alias}
            each_refs = _references(resource_config.get("for_each_expression")) or ()
        # Where Checkov's plan runner places a resource: the line before its "values", or the object's line
        # when it is written on one line. Findings agree with the plain Checkov plug-in line for line.
        start = getattr(resource, "start", 0) or 1
        values_line = getattr(resource, "key_lines", {}).get("values") or start
        line = max(start, values_line - 1)
        return PlanBlock(
            "data" if mode == "data" else "resource",
            type_name,
            name,
            resource.get("index"),
            body,
            self.path,
            line,
            getattr(resource, "end", 0) or line,
            None,
            None,
            plan_base=base,
            plan_index=index,
            plan=self.plan,
            context=_Context(prefix, outer.call_path, index, each_refs, outer) if index or each_refs else outer,
        )
