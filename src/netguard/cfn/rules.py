"""The netguard controls over CloudFormation. Each rule takes a Template and yields Violations.

`netguard scan` and both engine plug-ins call `evaluate` through the same per-file evaluation. The
resource types each control reports on come from the catalogue.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from netguard.catalog import load_catalog
from netguard.cfn.conditions import FALSE, TRUE, Expr, conj, disj
from netguard.cfn.template import NO_VALUE, Resource, Template, intrinsic
from netguard.config import ScanConfig
from netguard.iam.statements import parse_document, risky_statements
from netguard.netaddr import is_default_route
from netguard.violations import RuleSet, Violation

Rule = Callable[[Template, ScanConfig], Iterator[Violation]]
RULESET = RuleSet("cloudformation")
RULES = RULESET.rules
rule = RULESET.rule
evaluate = RULESET.evaluate


# --- coverage: "whenever X exists, something attaches to it" -------------------------------------
def _coverage_violation(
    template: Template, control: str, target: Resource, covers: list[tuple[str, Expr]], what: str, hint: str = ""
) -> Violation | None:
    """A violation when the union of cover guards does not hold whenever target exists."""
    if not covers:
        return Violation(control, target.logical_id, f"{target.logical_id}: no {what} refers to it{hint}")
    holds, scenario = template.conditions.implies(target.guard, disj(*(g for _, g in covers)))
    if holds:
        return None
    names = ", ".join(sorted({name for name, _ in covers}))
    if holds is None:
        why = "netguard cannot prove it exists in every scenario (too many conditions to enumerate)"
    else:
        why = f"it is missing when {template.conditions.describe(scenario)}"
    return Violation(control, target.logical_id, f"{target.logical_id}: {what} {names} is conditional and {why}")


def _literal_leaf_guard(template: Template, value: Any, accept: Callable[[Any], bool], guard: Expr) -> Expr:
    """Disjunction of the guards of the branches whose concrete value passes accept."""
    return disj(*(g for leaf, g in template.leaves(value, guard) if accept(leaf)))


def _index(entries: Iterator[tuple[str, str, Expr]]) -> dict[str, list[tuple[str, Expr]]]:
    """target logical id -> [(referring resource, guard)], built in one pass so rules stay linear."""
    index: dict[str, list[tuple[str, Expr]]] = defaultdict(list)
    for target, user, guard in entries:
        index[target].append((user, guard))
    return index


def _refs(template: Template, value: Any, attributes: set[str | None], guard: Expr) -> Iterator[tuple[str, Expr]]:
    for ref in template.references(value, guard):
        if ref.attribute in attributes:
            yield ref.target, ref.guard


@rule("NG-VPC-001")
def vpc_without_flow_log(template: Template, config: ScanConfig) -> Iterator[Violation]:
    def entries() -> Iterator[tuple[str, str, Expr]]:
        for log in template.of_type("AWS::EC2::FlowLog"):
            is_vpc = _literal_leaf_guard(
                template,
                log.properties.get("ResourceType"),
                lambda v: isinstance(v, str) and v.upper() == "VPC",
                log.guard,
            )
            if is_vpc != FALSE:
                for target, guard in _refs(template, log.properties.get("ResourceId"), {None, "VpcId"}, is_vpc):
                    yield target, log.logical_id, guard

    covers = _index(entries())
    for vpc in template.of_type(*RULESET.types("NG-VPC-001")):
        found = _coverage_violation(template, "NG-VPC-001", vpc, covers.get(vpc.logical_id, []), "flow log")
        if found:
            yield found


@rule("NG-VPC-002")
def flow_log_not_all_traffic(template: Template, config: ScanConfig) -> Iterator[Violation]:
    for log in template.of_type(*RULESET.types("NG-VPC-002")):
        bad = []
        for leaf, guard in template.leaves(log.properties.get("TrafficType"), log.guard):
            if not template.conditions.satisfiable(guard):
                continue
            if leaf is None or leaf is NO_VALUE:
                bad.append("TrafficType is not set")
            elif isinstance(leaf, str):
                if leaf.upper() != "ALL":
                    bad.append(f"TrafficType is {leaf}")
            else:
                values = template.ref_values(leaf)
                if values is None or any(v.upper() != "ALL" for v in values):
                    bad.append("TrafficType is not provably ALL")
        if bad:
            yield Violation(
                "NG-VPC-002", log.logical_id, f"{log.logical_id}: {'; '.join(sorted(set(bad)))}; set it to ALL"
            )


def _is_default_options(value: Any, template: Template) -> bool:
    if isinstance(value, str):
        return value.lower() == "default"
    fn = intrinsic(value)
    if fn and fn[0] == "Ref" and isinstance(fn[1], str) and fn[1] in template.parameters:
        spec = template.parameters[fn[1]]
        allowed = template.parameter_values(fn[1]) or []
        default = spec.get("Default") if isinstance(spec, dict) or hasattr(spec, "get") else None
        return "default" in [str(v).lower() for v in allowed] or str(default).lower() == "default"
    return value is None or value is NO_VALUE


@rule("NG-VPC-003")
def vpc_without_dhcp_options(template: Template, config: ScanConfig) -> Iterator[Violation]:
    covers: dict[str, list[tuple[str, Expr]]] = defaultdict(list)
    defaults: dict[str, list[str]] = defaultdict(list)
    for assoc in template.of_type("AWS::EC2::VPCDHCPOptionsAssociation"):
        real = _literal_leaf_guard(
            template, assoc.properties.get("DhcpOptionsId"), lambda v: not _is_default_options(v, template), TRUE
        )
        usable = real == TRUE or template.conditions.satisfiable(real)
        for target, guard in _refs(template, assoc.properties.get("VpcId"), {None, "VpcId"}, assoc.guard):
            if usable:
                covers[target].append((assoc.logical_id, conj(guard, real)))
            else:
                defaults[target].append(assoc.logical_id)
    for vpc in template.of_type(*RULESET.types("NG-VPC-003")):
        default_users = defaults.get(vpc.logical_id)
        hint = (
            f" (association {', '.join(default_users)} uses DhcpOptionsId 'default', which means no options set)"
            if default_users
            else ""
        )
        found = _coverage_violation(
            template, "NG-VPC-003", vpc, covers.get(vpc.logical_id, []), "DHCP options association", hint
        )
        if found:
            yield found


@rule("NG-DHCP-001")
def dhcp_unapproved_dns(template: Template, config: ScanConfig) -> Iterator[Violation]:
    for options in template.of_type(*RULESET.types("NG-DHCP-001")):
        bad = []
        for item, guard in template.list_items(options.properties.get("DomainNameServers"), options.guard):
            if item is None or not template.conditions.satisfiable(guard):
                continue  # not set: AWS uses AmazonProvidedDNS
            if isinstance(item, str):
                if not config.dns_approved(item):
                    bad.append(item)
                continue
            values = template.ref_values(item)
            if values is None:
                bad.append("a value netguard cannot resolve")
            else:
                bad.extend(v for v in values if not config.dns_approved(v))
        if bad:
            approved = ", ".join(config.approved_dns_servers) or "none"
            yield Violation(
                "NG-DHCP-001",
                options.logical_id,
                f"{options.logical_id}: DomainNameServers has {', '.join(dict.fromkeys(bad))},"
                f" outside the approved list ({approved})",
            )


_EIP_USERS = ("AWS::EC2::EIPAssociation", "AWS::EC2::NatGateway", "AWS::ElasticLoadBalancingV2::LoadBalancer")


def _allocation_values(template: Template, user: Resource) -> list[Any]:
    props = user.properties
    if user.type == "AWS::EC2::EIPAssociation":
        return [props.get("AllocationId")]
    if user.type == "AWS::EC2::NatGateway":
        return [props.get("AllocationId"), props.get("SecondaryAllocationIds")]
    return [m.get("AllocationId") for m, _ in template.list_items(props.get("SubnetMappings")) if hasattr(m, "get")]


@rule("NG-EIP-001")
def eip_not_attached(template: Template, config: ScanConfig) -> Iterator[Violation]:
    covers: dict[str, list[tuple[str, Expr]]] = defaultdict(list)
    wrong_ref: dict[str, set[str]] = defaultdict(set)
    for user in template.of_type(*_EIP_USERS):
        if user.type == "AWS::EC2::EIPAssociation":
            for target, guard in _refs(template, user.properties.get("EIP"), {None, "PublicIp"}, user.guard):
                covers[target].append((user.logical_id, guard))
        for value in _allocation_values(template, user):
            for ref in template.references(value, user.guard):
                if ref.attribute == "AllocationId":
                    covers[ref.target].append((user.logical_id, ref.guard))
                elif ref.attribute is None:
                    wrong_ref[ref.target].add(user.logical_id)
    for eip in template.of_type(*RULESET.types("NG-EIP-001")):
        name = eip.logical_id
        found_covers = list(covers.get(name, []))
        instance = _literal_leaf_guard(
            template, eip.properties.get("InstanceId"), lambda v: v not in (None, NO_VALUE, ""), TRUE
        )
        if instance != FALSE:
            found_covers.append((f"{name}.InstanceId", instance))
        hint = ""
        if wrong_ref.get(name):
            hint = (
                f" ({', '.join(sorted(wrong_ref[name]))} uses Ref {name} as an allocation id;"
                f" Ref returns the public IP, use !GetAtt {name}.AllocationId)"
            )
        found = _coverage_violation(
            template, "NG-EIP-001", eip, found_covers, "attachment (instance, association, NAT gateway or NLB)", hint
        )
        if found:
            yield found


_INLINE_HOLDERS = {"AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"}  # Policies: [...]; others: one document


_SAM_HOLDERS = {"AWS::Serverless::Function", "AWS::Serverless::StateMachine"}


def _documents(template: Template, resource: Resource) -> Iterator[tuple[str, Any, Expr]]:
    if resource.type in _SAM_HOLDERS:
        # SAM: Policies is a managed policy name, a policy document, a SAM policy template ({S3ReadPolicy:
        # {...}}, scoped by SAM), or a list of those; only documents grant actions netguard can read.
        for index, (policy, guard) in enumerate(
            template.list_items(resource.properties.get("Policies"), resource.guard)
        ):
            if hasattr(policy, "get") and "Statement" in policy:
                yield f"Policies item {index}", policy, guard
        return
    if resource.type not in _INLINE_HOLDERS:
        for doc, guard in template.leaves(resource.properties.get("PolicyDocument"), resource.guard):
            yield "PolicyDocument", doc, guard
        return
    for policy, guard in template.list_items(resource.properties.get("Policies"), resource.guard):
        if not hasattr(policy, "get"):
            continue
        label = policy.get("PolicyName") if isinstance(policy.get("PolicyName"), str) else "inline policy"
        for doc, doc_guard in template.leaves(policy.get("PolicyDocument"), guard):
            yield f"policy {label}", doc, doc_guard


MAX_STATEMENT_VARIANTS = 64


def _expand(template: Template, node: Any, guard: Expr, budget: list[int]) -> list[tuple[Any, Expr]]:
    """Every Fn::If-free variant of node with its guard; AWS::NoValue entries are dropped."""
    variants: list[tuple[Any, Expr]] = []
    for leaf, leaf_guard in template.leaves(node, guard):
        if isinstance(leaf, dict) or (hasattr(leaf, "items") and not isinstance(leaf, (str, list))):
            partial: list[tuple[dict, Expr]] = [({}, leaf_guard)]
            for key in [str(k) for k in leaf if not str(k).startswith("__")]:
                options = _expand(template, leaf[key], TRUE, budget)
                partial = [
                    ({**d, key: v} if v is not NO_VALUE else d, conj(g, vg)) for d, g in partial for v, vg in options
                ]
                budget[0] -= len(partial)
            variants.extend(partial)
        elif isinstance(leaf, list):
            partial_list: list[tuple[list, Expr]] = [([], leaf_guard)]
            for item in leaf:
                options = _expand(template, item, TRUE, budget)
                partial_list = [
                    (items + ([v] if v is not NO_VALUE else []), conj(g, vg))
                    for items, g in partial_list
                    for v, vg in options
                ]
                budget[0] -= len(partial_list)
            variants.extend(partial_list)
        else:
            variants.append((leaf, leaf_guard))
        if budget[0] < 0:
            raise OverflowError
    return variants


def _literalise(template: Template, node: Any) -> Any:
    """Render string-like intrinsics in Action/Resource so wildcards in Sub/Join are visible."""
    if isinstance(node, list):
        return [_literalise(template, v) for v in node]
    rendered = template.render_string(node)
    return rendered if rendered is not None else node


_LITERAL_KEYS = ("Action", "NotAction", "Resource", "NotResource")


def _statement_variants(template: Template, raw: Any, guard: Expr) -> Iterator[tuple[int, dict, Expr]]:
    """Each Fn::If-free statement of a Statement value with its guard; raises OverflowError past the budget."""
    for variant, variant_guard in _expand(template, raw, guard, [MAX_STATEMENT_VARIANTS * 8]):
        for index, statement in enumerate(variant if isinstance(variant, list) else [variant]):
            if isinstance(statement, dict):
                literal = {k: _literalise(template, v) if k in _LITERAL_KEYS else v for k, v in statement.items()}
                yield index, literal, variant_guard


def _iam_violation(control_id: str, actions: tuple[str, ...]) -> Rule:
    def check(template: Template, config: ScanConfig) -> Iterator[Violation]:
        for resource in template.of_type(*RULESET.types(control_id)):
            messages = []
            for label, raw_doc, guard in _documents(template, resource):
                if intrinsic(raw_doc) and intrinsic(raw_doc)[0] in ("Fn::Sub", "Fn::Join"):
                    raw_doc = template.render_string(raw_doc)  # a JSON string built with !Sub / !Join
                doc = parse_document(raw_doc) if isinstance(raw_doc, str) else raw_doc
                if not hasattr(doc, "get"):
                    continue
                try:
                    variants = list(_statement_variants(template, doc.get("Statement"), guard))
                except OverflowError:
                    messages.append(f"{label}: too many Fn::If combinations for netguard to check every scenario")
                    continue
                for index, statement, variant_guard in variants:
                    if not template.conditions.satisfiable(variant_guard):
                        continue
                    for hit in risky_statements({"Statement": [statement]}, actions):
                        scenario = ""
                        if variant_guard != TRUE:
                            _, example = template.conditions.implies(variant_guard, FALSE)
                            scenario = f" when {template.conditions.describe(example)}"
                        text = hit.describe().replace("statement 0", f"{label}: statement {index}", 1)
                        messages.append(text + scenario)
            if messages:
                unique = list(dict.fromkeys(messages))
                yield Violation(control_id, resource.logical_id, f"{resource.logical_id}: " + "; ".join(unique))

    return check


for _control in load_catalog().values():
    if _control.actions:
        RULES[_control.id] = _iam_violation(_control.id, _control.actions)


def _account_is_self(template: Template, value: Any) -> bool:
    fn = intrinsic(value)
    if fn and fn[0] == "Ref" and fn[1] == "AWS::AccountId":
        return True
    return bool(fn and fn[0] == "Fn::Sub" and isinstance(fn[1], str) and fn[1].strip() == "${AWS::AccountId}")


@rule("NG-PCX-001")
def peering_unapproved_account(template: Template, config: ScanConfig) -> Iterator[Violation]:
    for peering in template.of_type(*RULESET.types("NG-PCX-001")):
        bad = []
        for leaf, guard in template.leaves(peering.properties.get("PeerOwnerId"), peering.guard):
            if leaf is None or leaf is NO_VALUE or not template.conditions.satisfiable(guard):
                continue
            if _account_is_self(template, leaf):
                continue
            literal = str(leaf) if isinstance(leaf, (str, int)) else None
            if literal is not None:
                if literal not in config.approved_peer_accounts:
                    bad.append(f"account {literal} is not approved")
                continue
            values = template.ref_values(leaf)
            if values is None or any(v not in config.approved_peer_accounts for v in values):
                bad.append("the peer account is not provably this account or an approved one")
        if bad:
            yield Violation(
                "NG-PCX-001",
                peering.logical_id,
                f"{peering.logical_id}: PeerOwnerId: {'; '.join(dict.fromkeys(bad))}"
                " (approved_peer_accounts in .netguard.yaml)",
            )


@rule("NG-PCX-002")
def default_route_via_peering(template: Template, config: ScanConfig) -> Iterator[Violation]:
    for route in template.of_type(*RULESET.types("NG-PCX-002")):
        via_peering = _literal_leaf_guard(
            template,
            route.properties.get("VpcPeeringConnectionId"),
            lambda v: v not in (None, NO_VALUE, ""),
            route.guard,
        )
        for key in ("DestinationCidrBlock", "DestinationIpv6CidrBlock"):
            default = _literal_leaf_guard(template, route.properties.get(key), is_default_route, TRUE)
            if default != FALSE and template.conditions.satisfiable(conj(via_peering, default)):
                yield Violation(
                    "NG-PCX-002",
                    route.logical_id,
                    f"{route.logical_id}: {key} is a default route through a VPC peering connection;"
                    " route only the peer's CIDR blocks",
                )
                break
