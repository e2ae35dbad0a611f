"""The netguard controls over a Terraform module (as rendered by Checkov)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from netguard.catalog import load_catalog
from netguard.config import ScanConfig
from netguard.iam.statements import parse_document, risky_statements
from netguard.netaddr import is_default_route
from netguard.terraform.module import Block, Module, Target, references, unwrap
from netguard.violations import RuleSet, Violation

Rule = Callable[[Module, ScanConfig], Iterator[Violation]]
RULESET = RuleSet()
RULES = RULESET.rules
rule = RULESET.rule
evaluate = RULESET.evaluate

_SPACES = re.compile(r"\s+")


def _targets(module: Module, block: Block, value: Any) -> Iterator[Target]:
    """References in value; `each.value.X` resolves through a for_each over a whole resource."""
    yield from references(value)
    text = json.dumps(value) if not isinstance(value, str) else value
    if "each.value" in text and block.existence:
        for_each = list(references(block.existence))
        if len(for_each) == 1 and for_each[0].index is None and for_each[0].attribute is None:
            match = re.search(r"each\.value\.([A-Za-z_]\w*)", text)
            yield Target(for_each[0].base, "*", match.group(1) if match else None)


def _iterates_over(block: Block, target: Block) -> bool:
    """True when block's for_each is the whole collection target belongs to (one instance each)."""
    if not isinstance(block.count, str):
        return False
    refs = list(references(block.count))
    return (
        len(refs) == 1 and refs[0].base == target.base and refs[0].index is None and block.count.strip() == target.base
    )


def _same_condition(a: Block, b: Block) -> bool:
    return bool(a.conditional and b.conditional and _SPACES.sub("", a.conditional) == _SPACES.sub("", b.conditional))


def _coverage(
    module: Module, control: str, target: Block, covers: list[Block], what: str, hint: str = ""
) -> Violation | None:
    if not covers:
        return Violation(control, target.address, f"{target.address}: no {what} refers to it{hint}")
    if any(c.existence is None or _same_condition(c, target) or _iterates_over(c, target) for c in covers):
        return None
    detail = "; ".join(f"{c.address} exists only when `{c.existence}` is non-zero" for c in covers)
    return Violation(control, target.address, f"{target.address}: {what} is conditional: {detail}")


def _refers(module: Module, holder: Block, value: Any, target: Block, attributes: set[str | None]) -> bool:
    return any(ref.attribute in attributes and target in module.resolve(ref) for ref in _targets(module, holder, value))


@rule("NG-VPC-001")
def vpc_without_flow_log(module: Module, config: ScanConfig) -> Iterator[Violation]:
    logs = module.of_type("aws_flow_log")
    for vpc in module.of_type("aws_vpc"):
        covers = [log for log in logs if _refers(module, log, log.config.get("vpc_id"), vpc, {"id"})]
        found = _coverage(module, "NG-VPC-001", vpc, covers, "flow log")
        if found:
            yield found


@rule("NG-VPC-002")
def flow_log_not_all_traffic(module: Module, config: ScanConfig) -> Iterator[Violation]:
    for log in module.of_type("aws_flow_log"):
        traffic = log.attr("traffic_type")
        if isinstance(traffic, str) and traffic.upper() == "ALL":
            continue
        shown = "not set" if traffic is None else f"`{traffic}`"
        yield Violation("NG-VPC-002", log.address, f'{log.address}: traffic_type is {shown}; set it to "ALL"')


@rule("NG-VPC-003")
def vpc_without_dhcp_options(module: Module, config: ScanConfig) -> Iterator[Violation]:
    associations = module.of_type("aws_vpc_dhcp_options_association")
    for vpc in module.of_type("aws_vpc"):
        covers, defaults = [], []
        for assoc in associations:
            if not _refers(module, assoc, assoc.config.get("vpc_id"), vpc, {"id"}):
                continue
            options = assoc.attr("dhcp_options_id")
            if isinstance(options, str) and options.strip().lower() == "default":
                defaults.append(assoc.address)
            else:
                covers.append(assoc)
        hint = (
            f' ({", ".join(defaults)} uses dhcp_options_id "default", which means no options set)' if defaults else ""
        )
        found = _coverage(module, "NG-VPC-003", vpc, covers, "DHCP options association", hint)
        if found:
            yield found


def _literal_list(value: Any) -> list[Any]:
    value = unwrap(value)
    if isinstance(value, list):
        flat = []
        for item in value:
            flat.extend(item if isinstance(item, list) else [item])
        return flat
    return [] if value is None else [value]


def _is_literal(value: Any) -> bool:
    return isinstance(value, str) and not any(
        marker in value for marker in ("${", "var.", "local.", "module.", "data.", "aws_")
    )


@rule("NG-DHCP-001")
def dhcp_unapproved_dns(module: Module, config: ScanConfig) -> Iterator[Violation]:
    for options in module.of_type("aws_vpc_dhcp_options"):
        bad = []
        servers = _literal_list(options.config.get("domain_name_servers"))
        raw = options.raw_expression("domain_name_servers")
        if not servers and raw and raw.replace(" ", "") != "[]":
            bad.append(f"`{raw}` (not resolvable)")
        for server in servers:
            if not _is_literal(server):
                bad.append(f"`{server}` (not resolvable)")
            elif not config.dns_approved(server):
                bad.append(server)
        if bad:
            approved = ", ".join(config.approved_dns_servers) or "none"
            yield Violation(
                "NG-DHCP-001",
                options.address,
                f"{options.address}: domain_name_servers has {', '.join(bad)}, outside the approved list ({approved})",
            )


@rule("NG-EIP-001")
def eip_not_attached(module: Module, config: ScanConfig) -> Iterator[Violation]:
    users: list[tuple[Block, Any, set[str | None]]] = []
    for assoc in module.of_type("aws_eip_association"):
        users.append((assoc, assoc.config.get("allocation_id"), {"id", "allocation_id"}))
        users.append((assoc, assoc.config.get("public_ip"), {"public_ip"}))
    for nat in module.of_type("aws_nat_gateway"):
        users.append((nat, nat.config.get("allocation_id"), {"id", "allocation_id"}))
        users.append((nat, nat.config.get("secondary_allocation_ids"), {"id", "allocation_id"}))
    for lb in module.of_type("aws_lb", "aws_alb"):
        for mapping in lb.blocks("subnet_mapping"):
            users.append((lb, mapping.get("allocation_id"), {"id", "allocation_id"}))
    for eip in module.of_type("aws_eip"):
        if eip.attr("instance") or eip.attr("network_interface"):
            continue
        covers = [user for user, value, attrs in users if _refers(module, user, value, eip, attrs)]
        found = _coverage(
            module,
            "NG-EIP-001",
            eip,
            list(dict.fromkeys(covers)),
            "attachment (instance, network interface, association, NAT gateway or NLB)",
        )
        if found:
            yield found


def _policy_documents(block: Block) -> Iterator[tuple[str, Any]]:
    if block.type == "aws_iam_policy_document":
        yield "policy document", _document_from_data(block)
        return
    if block.type == "aws_iam_role":
        for inline in block.blocks("inline_policy"):
            yield f"inline policy {unwrap(inline.get('name')) or ''}".strip(), unwrap(inline.get("policy"))
        return
    yield "policy", block.attr("policy")


def _document_from_data(block: Block) -> dict:
    statements = []
    for raw in block.blocks("statement"):
        statement: dict[str, Any] = {"Effect": unwrap(raw.get("effect")) or "Allow"}
        for hcl, iam in (
            ("actions", "Action"),
            ("not_actions", "NotAction"),
            ("resources", "Resource"),
            ("not_resources", "NotResource"),
        ):
            if hcl in raw:
                statement[iam] = _literal_list(raw[hcl])
        if raw.get("condition"):
            statement["Condition"] = raw["condition"]
        if raw.get("sid"):
            statement["Sid"] = unwrap(raw["sid"])
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def _iam_rule(control_id: str, actions: tuple[str, ...]) -> Rule:
    def check(module: Module, config: ScanConfig) -> Iterator[Violation]:
        holders = module.of_type(
            "aws_iam_policy", "aws_iam_role_policy", "aws_iam_user_policy", "aws_iam_group_policy", "aws_iam_role"
        )
        holders += module.of_type("aws_iam_policy_document", kind="data")
        for block in holders:
            messages = []
            for label, raw in _policy_documents(block):
                document = parse_document(raw)
                if document is None:
                    continue  # a reference (e.g. data.aws_iam_policy_document.x.json) is checked at its source
                for hit in risky_statements(document, actions):
                    messages.append(f"{label}: " + hit.describe())
            if messages:
                yield Violation(control_id, block.address, f"{block.address}: " + "; ".join(messages))

    return check


for _control in load_catalog().values():
    if _control.actions:
        RULES[_control.id] = _iam_rule(_control.id, _control.actions)


def _is_this_account(module: Module, holder: Block, value: Any) -> bool:
    for ref in references(value):
        if ref.base.startswith("data.aws_caller_identity.") and ref.attribute == "account_id":
            sources = module.resolve(Target(ref.base, ref.index, None))
            if sources and all(not s.attr("provider") for s in sources):
                return True
    return False


@rule("NG-PCX-001")
def peering_unapproved_account(module: Module, config: ScanConfig) -> Iterator[Violation]:
    for peering in module.of_type("aws_vpc_peering_connection"):
        owner = peering.attr("peer_owner_id")
        if owner is None or _is_this_account(module, peering, owner):
            continue
        if _is_literal(str(owner)) and str(owner) in config.approved_peer_accounts:
            continue
        why = (
            f"account {owner} is not approved"
            if _is_literal(str(owner))
            else (f"`{owner}` is not provably this account or an approved one")
        )
        yield Violation(
            "NG-PCX-001",
            peering.address,
            f"{peering.address}: peer_owner_id: {why} (approved_peer_accounts in .netguard.yaml)",
        )


def _is_default_route(value: Any) -> bool:
    return is_default_route(unwrap(value))


@rule("NG-PCX-002")
def default_route_via_peering(module: Module, config: ScanConfig) -> Iterator[Violation]:
    for route in module.of_type("aws_route"):
        if not route.attr("vpc_peering_connection_id"):
            continue
        for key in ("destination_cidr_block", "destination_ipv6_cidr_block"):
            if _is_default_route(route.config.get(key)):
                yield Violation(
                    "NG-PCX-002",
                    route.address,
                    f"{route.address}: {key} is a default route through a VPC peering connection",
                )
                break
    for table in module.of_type("aws_route_table", "aws_default_route_table"):
        for inline in table.blocks("route"):
            if unwrap(inline.get("vpc_peering_connection_id")) and any(
                _is_default_route(inline.get(k)) for k in ("cidr_block", "ipv6_cidr_block")
            ):
                yield Violation(
                    "NG-PCX-002",
                    table.address,
                    f"{table.address}: an inline route sends a default route through a VPC peering connection",
                )
                break
