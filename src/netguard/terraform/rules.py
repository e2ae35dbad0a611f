"""The netguard controls over a Terraform module as netguard renders it (terraform/loader.py)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from netguard.catalog import load_catalog
from netguard.config import ScanConfig
from netguard.iam.statements import parse_document, risky_statements
from netguard.netaddr import is_default_route
from netguard.terraform import existence, expressions
from netguard.terraform.expressions import UNKNOWN
from netguard.terraform.module import DATA_SOURCES, Block, Module, Target, unwrap
from netguard.violations import RuleSet, Violation

Rule = Callable[[Module, ScanConfig], Iterator[Violation]]
RULESET = RuleSet("terraform")
RULES = RULESET.rules
rule = RULESET.rule
evaluate = RULESET.evaluate

_SPACES = re.compile(r"\s+")


def _violation(block: Block, control: str, message: str) -> Violation:
    """A violation placed on its block's file and line (two blocks may share an address in a broken module)."""
    via = getattr(block.scope, "call_site", None)
    return Violation(control, block.address, message, where=(block.file, block.line), via=via)


def _same_condition(a: Block, b: Block) -> bool:
    """The same count/for_each text in the same module instance (in another, the same words read
    other variables)."""
    return bool(
        a.existence
        and b.existence
        and a.module_path == b.module_path
        and _SPACES.sub("", a.existence) == _SPACES.sub("", b.existence)
    )


def _iterates_over(block: Block, target: Block) -> bool:
    """True when block's for_each is the whole resource target belongs to (one instance each)."""
    return block.each_source is not None and block.each_source == target.base


def _coverage(target: Block, control: str, covers: list[Block], what: str, hint: str = "") -> Violation | None:
    if not covers:
        return _violation(target, control, f"{target.address}: no {what} refers to it{hint}")
    if any(c.existence is None or _same_condition(c, target) or _iterates_over(c, target) for c in covers):
        return None
    holds, scenario = existence.implies(target, covers)
    if holds:
        return None
    detail = "; ".join(f"{c.address} exists only when `{c.existence}` is non-zero" for c in covers)
    why = (
        f"it is missing {existence.describe(scenario)}"
        if holds is False
        else "netguard cannot prove it exists whenever the target does"
    )
    return _violation(target, control, f"{target.address}: {what} is conditional ({detail}); {why}")


def _covers(module: Module, users: Iterator[tuple[Block, Any, set[str | None]]]) -> dict[int, list[Block]]:
    """id(target block) -> the blocks that refer to it, built in one pass so the rules stay linear."""
    index: dict[int, list[Block]] = defaultdict(list)
    for user, raw, attributes in users:
        for ref in user.targets(raw):
            if ref.attribute in attributes:
                for target in module.resolve(ref):
                    if not index[id(target)] or index[id(target)][-1] is not user:
                        index[id(target)].append(user)
    return index


@rule("NG-VPC-001")
def vpc_without_flow_log(module: Module, config: ScanConfig) -> Iterator[Violation]:
    covers = _covers(module, ((log, log.raw("vpc_id"), {"id"}) for log in module.of_type("aws_flow_log")))
    for vpc in module.of_type(*RULESET.types("NG-VPC-001")):
        found = _coverage(vpc, "NG-VPC-001", covers.get(id(vpc), []), "flow log")
        if found:
            yield found


@rule("NG-VPC-002")
def flow_log_not_all_traffic(module: Module, config: ScanConfig) -> Iterator[Violation]:
    for log in module.of_type(*RULESET.types("NG-VPC-002")):
        traffic = log.attr("traffic_type")
        if isinstance(traffic, str) and traffic.upper() == "ALL":
            continue
        raw = log.raw("traffic_type")
        shown = "not set" if raw is None else f"`{_shown(raw)}`"
        yield _violation(log, "NG-VPC-002", f'{log.address}: traffic_type is {shown}; set it to "ALL"')


def _shown(raw: Any) -> str:
    """An attribute as the user wrote it, for messages."""
    text = raw if isinstance(raw, str) else json.dumps(raw, default=str)
    return text[2:-1] if text.startswith("${") and text.endswith("}") else text


@rule("NG-VPC-003")
def vpc_without_dhcp_options(module: Module, config: ScanConfig) -> Iterator[Violation]:
    associations = module.of_type("aws_vpc_dhcp_options_association")
    real = [a for a in associations if not _is_default_options(a)]
    covers = _covers(module, ((a, a.raw("vpc_id"), {"id"}) for a in real))
    defaults = _covers(module, ((a, a.raw("vpc_id"), {"id"}) for a in associations if _is_default_options(a)))
    for vpc in module.of_type(*RULESET.types("NG-VPC-003")):
        default_users = [a.address for a in defaults.get(id(vpc), [])]
        hint = (
            f' ({", ".join(default_users)} uses dhcp_options_id "default", which means no options set)'
            if default_users
            else ""
        )
        found = _coverage(vpc, "NG-VPC-003", covers.get(id(vpc), []), "DHCP options association", hint)
        if found:
            yield found


def _is_default_options(association: Block) -> bool:
    options = association.attr("dhcp_options_id")
    return isinstance(options, str) and options.strip().lower() == "default"


def _is_literal(value: Any) -> bool:
    return isinstance(value, str) and value is not UNKNOWN


@rule("NG-DHCP-001")
def dhcp_unapproved_dns(module: Module, config: ScanConfig) -> Iterator[Violation]:
    for options in module.of_type(*RULESET.types("NG-DHCP-001")):
        bad = []
        raw = options.raw("domain_name_servers")
        servers = options.attr("domain_name_servers")
        if raw is not None and not isinstance(servers, list):
            bad.append(f"`{_shown(raw)}` (not resolvable)")
        for server in servers if isinstance(servers, list) else []:
            if not _is_literal(server):
                bad.append("a value netguard cannot resolve")
            elif not config.dns_approved(server):
                bad.append(server)
        if bad:
            approved = ", ".join(config.approved_dns_servers) or "none"
            yield _violation(
                options,
                "NG-DHCP-001",
                f"{options.address}: domain_name_servers has {', '.join(dict.fromkeys(bad))},"
                f" outside the approved list ({approved})",
            )


def _eip_users(module: Module) -> Iterator[tuple[Block, Any, set[str | None]]]:
    allocation = {"id", "allocation_id"}
    for assoc in module.of_type("aws_eip_association"):
        yield assoc, assoc.raw("allocation_id"), allocation
        yield assoc, assoc.raw("public_ip"), {"public_ip"}
    for nat in module.of_type("aws_nat_gateway"):
        yield nat, nat.raw("allocation_id"), allocation
        yield nat, nat.raw("secondary_allocation_ids"), allocation
    for lb in module.of_type("aws_lb", "aws_alb"):
        for mapping in lb.nested("subnet_mapping"):
            yield lb, unwrap(mapping.get("allocation_id")), allocation
    for server in module.of_type("aws_transfer_server"):
        for endpoint in server.nested("endpoint_details"):
            yield server, unwrap(endpoint.get("address_allocation_ids")), allocation


@rule("NG-EIP-001")
def eip_not_attached(module: Module, config: ScanConfig) -> Iterator[Violation]:
    covers = _covers(module, _eip_users(module))
    for eip in module.of_type(*RULESET.types("NG-EIP-001")):
        if eip.has("instance") or eip.has("network_interface"):
            continue
        found = _coverage(
            eip,
            "NG-EIP-001",
            covers.get(id(eip), []),
            "attachment (instance, network interface, association, NAT gateway, NLB or Transfer server)",
        )
        if found:
            yield found


def _known(value: Any) -> Any:
    """A document with every unknown value as a placeholder that matches no pattern."""
    if value is UNKNOWN:
        return "(unknown)"
    if isinstance(value, list):
        return [_known(v) for v in value]
    if isinstance(value, dict):
        return {k: _known(v) for k, v in value.items()}
    return value


def _policy_documents(block: Block) -> Iterator[tuple[str, Any]]:
    if block.type == "aws_iam_policy_document":
        yield "policy document", _document_from_data(block)
        return
    if block.type == "aws_iam_role":
        for inline in block.nested("inline_policy"):
            name = block.value(unwrap(inline.get("name")))
            label = f"inline policy {name}" if isinstance(name, str) else "inline policy"
            yield label, _document(block, unwrap(inline.get("policy")))
        return
    yield "policy", _document(block, block.raw("policy"))


_INTERPOLATION = re.compile(r"\$\{")


def _document(block: Block, raw: Any) -> Any:
    """A policy document as far as it can be known: `jsonencode({...})` and JSON text with some
    interpolations netguard cannot evaluate (an ARN of another resource) still show every statement,
    the unknown parts as placeholders; only a wholly unknown value (`var.policy`) stays unknown."""
    value = block.value(raw)
    if value is not UNKNOWN or not isinstance(raw, str):
        return value
    whole = raw[2:-1].strip() if raw.startswith("${") and raw.endswith("}") else None
    if whole and whole.startswith("jsonencode(") and whole.endswith(")"):
        return _known(block.value("${" + whole[len("jsonencode(") : -1] + "}"))
    if whole and whole.startswith(("file(", "templatefile(")) and whole.endswith(")"):
        return _policy_file(block, whole)
    if whole is None and "${" in raw:
        return _substitute(raw, block.value)
    return value


def _arguments(call: str) -> list[str]:
    """The argument texts of `f(a, b)`, split at top-level commas."""
    inner = call[call.index("(") + 1 : -1]
    parts, start = [], 0
    for index, char in expressions.top_level(inner):
        if char == ",":
            parts.append(inner[start:index])
            start = index + 1
    parts.append(inner[start:])
    return [part.strip() for part in parts if part.strip()]


def _policy_file(block: Block, call: str) -> Any:
    """`file("x.json")` or `templatefile("x.tpl", {vars})`, read relative to the module like Terraform;
    a file that cannot be read is an error naming it (its policy cannot be judged)."""
    from pathlib import Path

    from netguard.config import DEFAULT_LIMITS
    from netguard.errors import InputError
    from netguard.safety import read_vetted

    arguments = _arguments(call)
    name = block.value("${" + arguments[0] + "}") if arguments else UNKNOWN
    if not isinstance(name, str):
        return UNKNOWN
    # Terraform resolves a relative path from where it runs, the root module (hence path.module).
    folder = Path(getattr(block.scope, "path_root", None) or Path(block.file).parent)
    path = Path(name) if Path(name).is_absolute() else folder / name
    raw, problem = read_vetted(path, DEFAULT_LIMITS)
    if problem or raw is None:
        block.scope.module.problems.append(
            InputError(block.file, f"{block.address}: policy file {name}: {problem}", block.line or None)
        )
        return UNKNOWN
    text = raw.decode("utf-8", errors="replace")
    if call.startswith("file("):
        return text
    variables = block.value("${" + arguments[1] + "}") if len(arguments) > 1 else {}
    return _render_template(text, variables if isinstance(variables, dict) else {})


class _TemplateScope:
    """templatefile()'s scope: the names of its variables map, nothing else."""

    def __init__(self, variables: dict[str, Any]) -> None:
        self.variables = variables

    def lookup(self, root: str, path: list[Any]) -> Any:
        value = self.variables.get(root, UNKNOWN)
        for key in path:
            value = value[key]
        return value


def _render_template(text: str, variables: dict[str, Any]) -> str:
    """A template file rendered, each interpolation netguard cannot know left as a placeholder."""
    scope = _TemplateScope(variables)
    return _substitute(text, lambda interpolation: expressions.evaluate(interpolation, scope))


def _substitute(text: str, value_of: Callable[[str], Any]) -> str:
    """Each `${...}` of a template replaced by its value, or by a placeholder that matches nothing."""
    out, position = [], 0
    for match in _INTERPOLATION.finditer(text):
        if match.start() < position:
            continue
        depth, end = 0, match.end()
        while end < len(text):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth < 0:
                break
            end += 1
        value = value_of(text[match.start() : end + 1])
        known = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        out.append(text[position : match.start()] + (str(value) if known else "(unknown)"))
        position = end + 1
    return "".join(out) + text[position:]


def _document_from_data(block: Block) -> dict:
    statements = []
    for raw in block.nested("statement"):
        effect = block.value(unwrap(raw.get("effect")))
        statement: dict[str, Any] = {"Effect": effect if isinstance(effect, str) else "Allow"}
        for hcl, iam in (
            ("actions", "Action"),
            ("not_actions", "NotAction"),
            ("resources", "Resource"),
            ("not_resources", "NotResource"),
        ):
            if hcl in raw:
                value = block.value(unwrap(raw[hcl]))
                if value is UNKNOWN or value is None:
                    continue  # wholly an input (a dynamic statement's `statement.value.x`): judged where it is set
                statement[iam] = _known(value if isinstance(value, list) else [value])
        if raw.get("condition"):
            statement["Condition"] = {"netguard": "a condition block"}
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def _iam_rule(control_id: str, actions: tuple[str, ...]) -> Rule:
    def check(module: Module, config: ScanConfig) -> Iterator[Violation]:
        types = RULESET.types(control_id)
        holders = module.of_type(*(t for t in types if t not in DATA_SOURCES))
        holders += module.of_type(*(t for t in types if t in DATA_SOURCES), kind="data")
        for block in holders:
            messages = []
            for label, raw in _policy_documents(block):
                document = parse_document(_known(raw))
                if document is None:
                    continue  # a reference (e.g. data.aws_iam_policy_document.x.json) is checked at its source
                for hit in risky_statements(document, actions):
                    messages.append(f"{label}: " + hit.describe())
            if messages:
                yield _violation(block, control_id, f"{block.address}: " + "; ".join(messages))

    return check


for _control in load_catalog().values():
    if _control.actions:
        RULES[_control.id] = _iam_rule(_control.id, _control.actions)


def _is_this_account(module: Module, holder: Block, raw: Any) -> bool:
    for ref in holder.targets(raw):
        if ref.base.startswith("data.aws_caller_identity.") and ref.attribute == "account_id":
            sources = module.resolve(Target(ref.base, ref.index, None))
            if sources and all(s.raw("provider") is None for s in sources):
                return True
    return False


@rule("NG-PCX-001")
def peering_unapproved_account(module: Module, config: ScanConfig) -> Iterator[Violation]:
    for peering in module.of_type(*RULESET.types("NG-PCX-001")):
        raw = peering.raw("peer_owner_id")
        if raw is None or _is_this_account(module, peering, raw):
            continue
        owner = peering.value(raw)
        if isinstance(owner, (int, float)) and not isinstance(owner, bool):
            owner = str(int(owner)).zfill(12)
        if _is_literal(owner) and owner in config.approved_peer_accounts:
            continue
        why = (
            f"account {owner} is not approved"
            if _is_literal(owner)
            else f"`{_shown(raw)}` is not provably this account or an approved one"
        )
        yield _violation(
            peering,
            "NG-PCX-001",
            f"{peering.address}: peer_owner_id: {why} (approved_peer_accounts in .netguard.yaml)",
        )


def _is_default_route(value: Any) -> bool:
    return isinstance(value, str) and is_default_route(value)


@rule("NG-PCX-002")
def default_route_via_peering(module: Module, config: ScanConfig) -> Iterator[Violation]:
    types = RULESET.types("NG-PCX-002")
    for route in module.of_type(*(t for t in types if t == "aws_route")):
        if not route.has("vpc_peering_connection_id"):
            continue
        for key in ("destination_cidr_block", "destination_ipv6_cidr_block"):
            if _is_default_route(route.attr(key)):
                yield _violation(
                    route,
                    "NG-PCX-002",
                    f"{route.address}: {key} is a default route through a VPC peering connection",
                )
                break
    for table in module.of_type(*(t for t in types if t != "aws_route")):
        for inline in table.nested("route"):
            peering = table.value(unwrap(inline.get("vpc_peering_connection_id")))
            if peering not in (None, "") and any(
                _is_default_route(table.value(unwrap(inline.get(k)))) for k in ("cidr_block", "ipv6_cidr_block")
            ):
                yield _violation(
                    table,
                    "NG-PCX-002",
                    f"{table.address}: an inline route sends a default route through a VPC peering connection",
                )
                break
