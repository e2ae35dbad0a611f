"""Terraform expression evaluation over the values python-hcl2 really produces.

Most inputs go through `hcl2.loads`, so the tests pin the shapes the parser emits (`${...}` wrapping,
raw escapes, Python-repr tuples and objects inside expressions) as well as Terraform's semantics.
"""

from __future__ import annotations

import copy
import pickle
import time

import hcl2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netguard.terraform.expressions import (
    SPLAT,
    UNKNOWN,
    Bindings,
    Reference,
    Unknown,
    Wildcard,
    evaluate,
    is_known,
    references,
)

VARIABLES = {
    "create": True,
    "off": False,
    "env": "prod",
    "n": 5,
    "list": ["a", "b", "c"],
    "map": {"x": 1, "y": 2},
    "nested": {"a": {"b": "deep"}},
    "objs": [{"id": "i-1", "ports": [80, 8080], "tags": {"Name": "one"}}, {"id": "i-2", "ports": [443], "tags": {}}],
    "nullval": None,
    "cidr": "10.0.0.0/16",
}
LOCALS = {
    "cidrs": "${[for i in range(2) : cidrsubnet(var.cidr, 8, i)]}",
    "name": "${var.env}-vpc",
    "a": "${local.b}",
    "b": "${local.a}",
    "uses_count": "${count.index}",
}
SCOPE = Bindings(VARIABLES, LOCALS).for_instance(count_index=1)


def hcl(source: str) -> object:
    """The raw value hcl2 gives for `a = <source>`, with its one-element list unwrapped."""
    return hcl2.loads(f"a = {source}\n")["a"][0]


def run(source: str, scope: Bindings = SCOPE) -> object:
    return evaluate(hcl(source), scope)


def check(source: str, expected: object) -> None:
    result = run(source)
    if expected is UNKNOWN:
        assert result is UNKNOWN, f"{source}: {result!r}"
    else:
        assert result == expected and type(result) is type(expected), f"{source}: {result!r}"


LITERALS = [
    ("1", 1),
    ("1.5", 1.5),
    ("1.0", 1),
    ("-5", -5),
    ('"plain"', "plain"),
    ("true", True),
    ("null", None),
    ('[1, "two", true, null]', [1, "two", True, None]),
    ('{ a = 1, "b" = 2, c: 3 }', {"a": 1, "b": 2, "c": 3}),
    (r'"esc \" \n \\ \t $${x} %%{y}"', 'esc " \n \\ \t ${x} %{y}'),
    (r'"\u00e9\U0001F600"', "é\U0001f600"),
    ('"100% $ sure"', "100% $ sure"),
    ("<<EOT\nhello ${var.env}\nworld\nEOT", "hello prod\nworld"),
    ("<<EOT\nno \\n escapes here\nsecond\nEOT", "no \\n escapes here\nsecond"),
    ("<<-EOT\n    indented\n      more\n    EOT", "indented\n  more"),
    ('{"key with \\"quote" = 1}', {'key with "quote': 1}),
    ('length([1, "it\'s", "q\\"x"])', 3),
    ('lookup({a = "q\\"x"}, "a")', 'q"x'),
    ('lookup({a = "tab\\there"}, "a")', "tab\there"),
    ("[<<EOT\nline1\nline2\nEOT\n]", ["line1\nline2"]),
    # hcl2 drops a heredoc's last newline: a backslash that is no escape shows it was a heredoc
    ("<<EOT\none line ¯\\_(ツ)_/¯ ${var.env}\nEOT", "one line ¯\\_(ツ)_/¯ prod"),
    ('["${var.env}", <<EOT\n\\d+\nEOT\n]', ["prod", "\\d+"]),
]

OPERATORS = [
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 7),  # hcl2 renders "${1 + 2 * 3}": it drops parentheses (see test_parentheses_...)
    ("10 / 4", 2.5),
    ("10 / 5", 2),
    ("-5 % 3", -2),
    ("5 % -3", 2),
    ("5 % 0", 5),
    ("7.5 % 2", 1.5),
    ("10 - -2", 12),
    ("0.5 + 0.5", 1),
    ('"5" + 1', 6),
    ('"a" + 1', UNKNOWN),
    ("1 / 0", UNKNOWN),
    ("2 * 3 > 5", True),
    ("3 <= 2", False),
    ("1 + 2 == 3", True),
    ('1 == "1"', False),
    ("1 == 1.0", True),
    ("true == 1", False),
    ("[1, 2] == [1, 2]", True),
    ("[1, 2] == [1, 3]", False),
    ("{a = 1} == {a = 1}", True),
    ("null == null", True),
    ("var.env != null", True),
    ('var.env == "prod"', True),
    ("true || false && false", True),
    ("!true || true", True),
    ("!var.off", True),
    ("1 < 2 && 3 >= 2", True),
    ('"true" && true', True),
    ("1 && true", UNKNOWN),
    ("-var.n", -5),
    ("false && var.unset", False),
    ("var.unset && false", False),
    ("true || var.unset", True),
    ("true && var.unset", UNKNOWN),
    ("false || var.unset", UNKNOWN),
    ("var.unset == 1", UNKNOWN),
    ("[1, var.unset] == [2, var.unset]", False),
    ("[1, var.unset] == [1, var.unset]", UNKNOWN),
    ("var.unset + 1", UNKNOWN),
]

CONDITIONALS = [
    ("var.create ? 1 : 0", 1),
    ('var.off ? "a" : "b"', "b"),
    ('"true" ? 1 : 0', 1),
    ("false ? 1 : true ? 2 : 3", 2),
    ("var.unset ? 1 : 0", UNKNOWN),
    ("var.unset ? 1 : 1", 1),
    ("var.unset ? [1] : [1]", [1]),
    ("var.unset ? [var.unset] : [var.unset]", UNKNOWN),
    ("var.create ? 1 : var.list[99]", 1),
    ("null ? 1 : 0", UNKNOWN),
    ('var.env != null ? var.env : "default"', "prod"),
]

TRAVERSALS = [
    ("var.list[1]", "b"),
    ('var.list["1"]', "b"),
    ('var.map["x"]', 1),
    ("var.map.y", 2),
    ("var.nested.a.b", "deep"),
    ("var.list.0", "a"),
    ("var.list[5]", UNKNOWN),
    ("var.list[-1]", UNKNOWN),
    ("var.map.missing", UNKNOWN),
    ("var.nullval.x", UNKNOWN),
    ("var.list.x", UNKNOWN),
    ("var.objs[*].id", ["i-1", "i-2"]),
    ("var.objs.*.id", ["i-1", "i-2"]),
    ("var.objs[*].ports[0]", [80, 443]),
    ("var.objs.*.id[0]", "i-1"),
    ("var.objs[*].tags.Name", UNKNOWN),
    ("var.nullval[*]", []),
    ("var.map[*].x", [1]),
    ("var.objs[count.index].id", "i-2"),
    ("var.list[var.n - 4]", "b"),
    ("var.list[var.unset]", UNKNOWN),
    ("[1, 2][0]", 1),
    ('{ a = "x" }.a', "x"),
    ("aws_vpc.main.id", UNKNOWN),
    ("aws_instance.x[*].id", UNKNOWN),
    ("data.aws_region.current.name", UNKNOWN),
    ("module.vpc.vpc_id", UNKNOWN),
    ("path.module", UNKNOWN),
    ("terraform.workspace", UNKNOWN),
    ("var.unset", UNKNOWN),
    ("local.name", "prod-vpc"),
    ("local.cidrs[1]", "10.0.1.0/24"),
    ("local.a", UNKNOWN),
    ("local.uses_count", UNKNOWN),
    ("local.missing", UNKNOWN),
    ("count.index", 1),
    ("each.key", UNKNOWN),
]

TEMPLATES = [
    ('"x-${count.index}"', "x-1"),
    ('"${var.n}"', 5),
    ('"n=${var.n}"', "n=5"),
    ('"${true}"', True),
    ('"b=${true} f=${1.5}"', "b=true f=1.5"),
    ('"${var.env}-${var.list[0]}"', "prod-a"),
    ('"a ${aws_vpc.x.id} b"', UNKNOWN),
    ('"${var.nullval}x"', UNKNOWN),
    ('"${var.list}x"', UNKNOWN),
    ('"a ${lookup(var.map, "x", "d")} b"', "a 1 b"),
    ('"${"nested ${var.env}"}"', "nested prod"),
    ('"%{ if var.create }yes%{ else }no%{ endif }"', "yes"),
    ('"%{ if var.off }yes%{ endif }!"', "!"),
    ('"%{ if var.unset }yes%{ endif }"', UNKNOWN),
    ('"%{ for x in var.list ~} ${x}, %{ endfor ~}"', "a, b, c, "),
    ('"%{ for i, x in var.list }${i}${x}%{ endfor }"', "0a1b2c"),
    ('"%{ if true }${1}%{ endif }"', "1"),
    ('"a  ${~ "b" ~}  c"', "abc"),
]

FOR_EXPRESSIONS = [
    ("[for v in var.list : upper(v)]", ["A", "B", "C"]),
    ('[for i, v in var.list : "${i}=${v}"]', ["0=a", "1=b", "2=c"]),
    ('[for v in var.list : v if v != "b"]', ["a", "c"]),
    ("{for k, v in var.map : v => k}", {"1": "x", "2": "y"}),
    ('{for v in ["a", "b", "a"] : v => 1...}', {"a": [1, 1], "b": [1]}),
    ('{for v in ["a", "b", "a"] : v => 1}', UNKNOWN),
    ("[for k, v in {b = 2, a = 1} : k]", ["a", "b"]),
    ("[for s in var.list : {name = s, up = upper(s)}][1]", {"name": "b", "up": "B"}),
    ("[for v in var.unset : v]", UNKNOWN),
    ("[for v in var.list : v if var.unset]", UNKNOWN),
    ("[for v in var.list : var.unset]", [UNKNOWN, UNKNOWN, UNKNOWN]),
    ("[for v in 5 : v]", UNKNOWN),
    ("[for v in var.objs : v.id if length(v.ports) > 1]", ["i-1"]),
    ("flatten([for o in var.objs : [for p in o.ports : p]])", [80, 8080, 443]),
    ("{ for k, v in var.map : k => v if v != null }", {"x": 1, "y": 2}),
]

FUNCTIONS = [
    ("length(var.list)", 3),
    ('length("abc")', 3),
    ("length({a = 1})", 1),
    ("length([1, var.unset])", 2),
    ("length(5)", UNKNOWN),
    ("length(var.unset)", UNKNOWN),
    ('toset(["b", "a", "b"])', ["a", "b"]),
    ("toset([3, 1, 3])", [1, 3]),
    ('toset(["a", 1])', ["1", "a"]),
    ('tolist(["a", true])', ["a", "true"]),
    ("tolist([1, true])", UNKNOWN),
    ("tomap({a = 1})", {"a": 1}),
    ("tostring(5)", "5"),
    ("tostring(true)", "true"),
    ("tostring(null)", None),
    ("tostring([1])", UNKNOWN),
    ('tonumber("1.5")', 1.5),
    ('tonumber("x")', UNKNOWN),
    ('tobool("true")', True),
    ('concat(["a"], ["b", "c"])', ["a", "b", "c"]),
    ("concat([1], [var.unset])", [1, UNKNOWN]),
    ('element(["a", "b", "c"], 4)', "b"),
    ("element([], 0)", UNKNOWN),
    ('lookup(var.map, "x")', 1),
    ('lookup(var.map, "z", 0)', 0),
    ('lookup(var.map, "z")', UNKNOWN),
    ('try(var.map.missing, "d")', "d"),
    ('try(var.map.x, "d")', 1),
    ('try(var.unset, "d")', UNKNOWN),
    ("try(var.map.missing)", UNKNOWN),
    ("can(var.map.missing)", False),
    ("can(var.map.x)", True),
    ("can(var.unset)", UNKNOWN),
    ('coalesce("", null, "x")', "x"),
    ('coalesce("", null)', UNKNOWN),
    ('coalescelist([], ["a"])', ["a"]),
    ('compact(["a", "", null, 1])', ["a", "1"]),
    ('distinct([1, 2, 1, "1", true])', [1, 2, "1", True]),
    ("flatten([[1, [2]], [], [3]])", [1, 2, 3]),
    ("keys({b = 1, a = 2})", ["a", "b"]),
    ("values({b = 1, a = 2})", [2, 1]),
    ("merge({a = 1, b = 2}, null, {b = 3})", {"a": 1, "b": 3}),
    ("merge(var.unset, {b = 3})", UNKNOWN),
    ("range(3)", [0, 1, 2]),
    ("range(1, 4)", [1, 2, 3]),
    ("range(3, 0)", [3, 2, 1]),
    ("range(0, 1, 0.25)", [0, 0.25, 0.5, 0.75]),
    ("range(0, 1, 0)", UNKNOWN),
    ("range(1025)", UNKNOWN),
    ("min(3, 1, 2)", 1),
    ('max(3, "4")', 4),
    ("max()", UNKNOWN),
    ('contains(["a", "b"], "b")', True),
    ('contains(["1"], 1)', False),
    ('join(",", ["a", "b"], [1])', "a,b,1"),
    ('join(",", [null])', UNKNOWN),
    ('split(",", "a,b,,c")', ["a", "b", "", "c"]),
    ('lower("AbC")', "abc"),
    ('upper("abc")', "ABC"),
    ('format("%s-%d%%", "a", 1)', "a-1%"),
    ('format("%s", 1.5)', "1.5"),
    ('format("%03d", 1)', UNKNOWN),
    ('format("%s %s", "a")', UNKNOWN),
    ('format("%d", 1.5)', UNKNOWN),
    ('replace("a-b-c", "-", "_")', "a_b_c"),
    ('replace("abc", "/b/", "x")', UNKNOWN),
    ('substr("hello", 1, 3)', "ell"),
    ('substr("hello", -3, -1)', "llo"),
    ('substr("hello", 9, 2)', ""),
    ('zipmap(["a", "b"], [1, 2])', {"a": 1, "b": 2}),
    ('zipmap(["a"], [1, 2])', UNKNOWN),
    ("one([])", None),
    ('one(["a"])', "a"),
    ("one([1, 2])", UNKNOWN),
    ("abs(-3)", 3),
    ("ceil(1.2)", 2),
    ("floor(-1.5)", -2),
    ('jsonencode({b = [1, true, null], a = "<&>"})', '{"a":"\\u003c\\u0026\\u003e","b":[1,true,null]}'),
    ('jsonencode("é")', '"é"'),
    ("jsonencode([var.unset])", UNKNOWN),
    ('cidrsubnet("10.0.0.0/16", 8, 2)', "10.0.2.0/24"),
    ('cidrsubnet("10.1.2.0/24", 4, 15)', "10.1.2.240/28"),
    ('cidrsubnet("fd00::/56", 8, 1)', "fd00:0:0:1::/64"),
    ('cidrsubnet("10.0.0.0/16", 8, 256)', UNKNOWN),
    ('cidrhost("10.0.0.0/16", 1)', UNKNOWN),
    ('templatefile("${path.module}/x.tpl", {a = 1})', UNKNOWN),
    ('provider::aws::arn_parse("arn:aws:iam::1:role/x")', UNKNOWN),
    ("upper(var.unset)", UNKNOWN),
    ('merge(var.map, {Name = "x-${var.env}"})', {"x": 1, "y": 2, "Name": "x-prod"}),
]


@pytest.mark.parametrize(
    ("source", "expected"), LITERALS + OPERATORS + CONDITIONALS + TRAVERSALS + TEMPLATES + FOR_EXPRESSIONS + FUNCTIONS
)
def test_evaluates_like_terraform(source: str, expected: object) -> None:
    check(source, expected)


def test_parentheses_survive_in_source_text_but_not_in_hcl2_output() -> None:
    assert hcl("(var.off || var.create) && var.off") == "${var.off || var.create && var.off}"
    assert evaluate("${(var.off || var.create) && var.off}", SCOPE) is False
    assert evaluate("${(1 + 2) * 3}", SCOPE) == 9
    assert evaluate("${!(var.create && var.off)}", SCOPE) is True
    assert evaluate("${-(1 + 2)}", SCOPE) == -3
    assert evaluate("${(var.create ? 1 : 2) + 1}", SCOPE) == 2


def test_vpc_module_count_needs_source_text() -> None:
    """terraform-aws-vpc's public subnet count, as hcl2 renders it and as written."""
    source = (
        "local.create_public_subnets && (!var.one_nat_gateway_per_az || local.len_public_subnets >= "
        "length(var.azs)) ? local.len_public_subnets : 0"
    )
    scope = Bindings(
        {"one_nat_gateway_per_az": False, "azs": ["a", "b"]},
        {"create_public_subnets": "${false}", "len_public_subnets": "${2}"},
    )
    assert evaluate(hcl(source), scope) == 2  # wrong: hcl2 dropped the parentheses
    assert evaluate("${" + source + "}", scope) == 0


def test_source_text_with_comments_and_hcl_strings_in_collections() -> None:
    assert evaluate("${merge({a = 1, # note\n b = 2 // two\n}, {/* c */ c = 3})}", SCOPE) == {"a": 1, "b": 2, "c": 3}
    assert evaluate('${["a\\\\b", "it\'s", "${var.env}"]}', SCOPE) == ["a\\b", "it's", "prod"]


def test_raw_collections_evaluate_element_by_element() -> None:
    raw = hcl2.loads(
        'resource "aws_vpc" "v" {\n tags = { Name = "${var.env}-x", "${var.env}" = 1, bad = var.list[9] }\n}\n'
    )
    block = raw["resource"][0]["aws_vpc"]["v"]
    assert "__start_line__" in block
    assert evaluate(block, SCOPE)["tags"] == [{"Name": "prod-x", "prod": 1, "bad": UNKNOWN}]
    assert "__start_line__" not in evaluate(block, SCOPE)
    assert evaluate({"${var.unset}": 1}, SCOPE) is UNKNOWN
    assert evaluate([1, "${var.unset}", 2.0], SCOPE) == [1, UNKNOWN, 2]


def test_each_and_workspace_come_from_bindings() -> None:
    scope = Bindings(workspace="staging").for_instance(each_key="a", each_value={"cidr": "10.0.0.0/24"})
    assert evaluate("${each.key}-${each.value.cidr}", scope) == "a-10.0.0.0/24"
    assert evaluate("${terraform.workspace}", scope) == "staging"
    assert evaluate("${each.value.missing}", scope) is UNKNOWN
    assert evaluate("${try(each.value.missing, 1)}", scope) == 1


def test_locals_are_memoised_and_shared_by_instances() -> None:
    calls = []

    class Counting(dict):
        def __getitem__(self, name: str) -> object:
            calls.append(name)
            return super().__getitem__(name)

    module = Bindings(local_values=Counting(x="${1 + 1}"))
    assert evaluate("${local.x}", module.for_instance(count_index=0)) == 2
    assert evaluate("${local.x}", module.for_instance(count_index=1)) == 2
    assert calls == ["x"]


def test_unknown_is_a_singleton_that_survives_copies() -> None:
    assert Unknown() is UNKNOWN
    assert repr(UNKNOWN) == "UNKNOWN"
    assert pickle.loads(pickle.dumps(UNKNOWN)) is UNKNOWN
    assert copy.deepcopy([UNKNOWN])[0] is UNKNOWN
    assert is_known([1, {"a": [2]}]) and not is_known([1, {"a": [UNKNOWN]}])


COUNT_INDEX, EACH_KEY = Wildcard("count.index"), Wildcard("each.key")

REFERENCES = [
    (
        "aws_vpc.this[count.index].id",
        [Reference("aws_vpc", ("this", COUNT_INDEX, "id")), Reference("count", ("index",))],
    ),
    (
        "aws_subnet.s[each.key].id",
        [Reference("aws_subnet", ("s", EACH_KEY, "id")), Reference("each", ("key",))],
    ),
    ("aws_instance.x[*].id", [Reference("aws_instance", ("x", SPLAT, "id"))]),
    ("aws_instance.x.*.id", [Reference("aws_instance", ("x", SPLAT, "id"))]),
    (
        'aws_eip.nat[0].id == aws_eip.nat["a"].id',
        [Reference("aws_eip", ("nat", 0, "id")), Reference("aws_eip", ("nat", "a", "id"))],
    ),
    ("var.list.0", [Reference("var", ("list", 0))]),
    ("aws_x.y[var.i + 1]", [Reference("aws_x", ("y", Wildcard("var.i + 1"))), Reference("var", ("i",))]),
    ("module.vpc.vpc_id", [Reference("module", ("vpc", "vpc_id"))]),
    ("data.aws_region.current.name", [Reference("data", ("aws_region", "current", "name"))]),
    ("element(aws_subnet.a.*.id, 0)", [Reference("aws_subnet", ("a", SPLAT, "id"))]),
    (
        "var.create ? aws_vpc.a.id : aws_vpc.b.id",
        [Reference("var", ("create",)), Reference("aws_vpc", ("a", "id")), Reference("aws_vpc", ("b", "id"))],
    ),
    ("[for s in aws_subnet.x : s.id]", [Reference("aws_subnet", ("x",))]),
    (
        "{for k, v in var.m : k => aws_x.y[k].id}",
        [Reference("var", ("m",)), Reference("aws_x", ("y", Wildcard("k"), "id"))],
    ),
    ('"arn:${aws_iam_role.r.arn}/x"', [Reference("aws_iam_role", ("r", "arn"))]),
    ('merge(var.tags, {Name = "${var.env}-x"})', [Reference("var", ("tags",)), Reference("var", ("env",))]),
    (
        "[for o in var.objs : {id = o.id, vpc = aws_vpc.v.id}]",
        [Reference("var", ("objs",)), Reference("aws_vpc", ("v", "id"))],
    ),
    (
        '"%{ for x in var.l }${x.id}${aws_s3_bucket.b.arn}%{ endfor }"',
        [Reference("var", ("l",)), Reference("aws_s3_bucket", ("b", "arn"))],
    ),
    ("try(aws_vpc.v[0].id, null)", [Reference("aws_vpc", ("v", 0, "id"))]),
    ('"aws_vpc.x"', []),
    ('upper("aws_vpc.x and ${"aws_vpc.y"}")', []),
    ('jsonencode({a = "aws_vpc.y", "aws_vpc.z" = 1})', []),
    ("1 + 2", []),
]


@pytest.mark.parametrize(("source", "expected"), REFERENCES)
def test_references(source: str, expected: list[Reference]) -> None:
    assert references(hcl(source)) == expected


def test_references_walk_raw_blocks() -> None:
    raw = hcl2.loads(
        'resource "aws_route" "r" {\n  route_table_id = aws_route_table.rt[count.index].id\n'
        "  nat_gateway_id = element(aws_nat_gateway.n.*.id, count.index)\n}\n"
    )
    block = raw["resource"][0]["aws_route"]["r"]
    assert [ref.root for ref in references(block)] == ["aws_route_table", "count", "aws_nat_gateway", "count"]


GARBAGE = [
    "${",
    "${var.x",
    "${)(}",
    "${var.x[}",
    "${'unterminated}",
    '${"unterminated}',
    "%{ if x }",
    "%{ for }%{ endfor }",
    "%{ bogus }",
    "${1 +}",
    "${{a = }}",
    "${[for x in : x]}",
    "${a ? b}",
    "${\\}",
    r'${upper("bad \q escape")}',
    r'${"\u12"}',
    "${1e999}",
    "${" + "9" * 5000 + "}",
    "${" + "(" * 5000 + "1" + ")" * 5000 + "}",
    "${" + "!" * 5000 + "true}",
    "${" + "-" * 100_000 + "1}",
    "${" + "[" * 3000 + "]" * 3000 + "}",
    "%{ if true }" * 3000,
    "${'" + "\\'" * 10 + "}",
    '${"\\U0011FFFF"}',
    "${x::}",
]


@pytest.mark.parametrize("text", GARBAGE)
def test_garbage_is_unknown_not_an_exception(text: str) -> None:
    assert evaluate(text, SCOPE) is UNKNOWN
    assert isinstance(references(text), list)


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes", float("nan"), float("inf"), (1, 2), [[[[]]]] * 3])
def test_unexpected_python_values(value: object) -> None:
    result = evaluate(value, SCOPE)
    assert result is UNKNOWN or result == [[[[]]]] * 3


def test_deeply_nested_raw_values_do_not_raise() -> None:
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    assert evaluate(deep, SCOPE) is not None
    assert references(deep) == []


hcl_soup = st.lists(
    st.sampled_from(
        [
            "${",
            "}",
            "%{",
            "var.list",
            "aws_vpc.x",
            ".",
            "[",
            "]",
            "*",
            "(",
            ")",
            "{",
            "for",
            " in ",
            " if ",
            ":",
            "=>",
            "...",
            "?",
            "!",
            "-",
            "+",
            "/",
            "%",
            "==",
            "&&",
            "||",
            ",",
            '"',
            "'",
            "\\",
            "~",
            "1",
            "0.5",
            "true",
            "null",
            "None",
            "count.index",
            "length(",
            "range(",
            "try(",
            "a",
            " ",
            "\n",
            "$${",
            "=",
            "==",
        ]
    ),
    max_size=30,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.one_of(hcl_soup, hcl_soup.map(lambda text: "${" + text + "}"), st.text(max_size=40)))
def test_never_raises_on_any_string(text: str) -> None:
    result = evaluate(text, SCOPE)
    assert result is UNKNOWN or isinstance(result, str | int | float | bool | list | dict | type(None))
    assert all(isinstance(ref, Reference) for ref in references(text))


_APPLY = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
# (expression text, its value) pairs built together, with explicit parentheses kept in the text
arithmetic = st.recursive(
    st.integers(min_value=-50, max_value=50).map(lambda n: (str(n), n)),
    lambda inner: st.tuples(inner, st.sampled_from(sorted(_APPLY)), inner).map(
        lambda t: (f"({t[0][0]} {t[1]} {t[2][0]})", _APPLY[t[1]](t[0][1], t[2][1]))
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(arithmetic)
def test_integer_arithmetic_matches_python(case: tuple[str, int]) -> None:
    text, value = case
    assert evaluate("${" + text + "}", SCOPE) == value


def test_huge_range_and_collections_are_bounded() -> None:
    start = time.monotonic()
    assert run("range(1000000000)") is UNKNOWN
    big = Bindings({"big": list(range(200)), "s": "x" * 1000})
    assert evaluate("${[for x in var.big : x]}", big) == list(range(200))
    assert evaluate("${[for x in var.big : x]}", big, max_items=100) is UNKNOWN
    assert evaluate("${concat(var.big, var.big)}", big, max_items=300) is UNKNOWN
    assert evaluate('${replace(var.s, "", var.s)}', big, max_items=1000) is UNKNOWN
    assert evaluate('${join("", [for x in var.big : var.s])}', big, max_items=1000) is UNKNOWN
    nested = "${[for a in range(1000) : [for b in range(1000) : a * b]]}"
    assert evaluate(nested, SCOPE) is UNKNOWN
    assert time.monotonic() - start < 20


def test_shared_values_cannot_blow_up_exponentially() -> None:
    chain = {"l0": '${["x", "y"]}'} | {f"l{i}": f"${{[local.l{i - 1}, local.l{i - 1}]}}" for i in range(1, 60)}
    scope = Bindings(local_values=chain)
    start = time.monotonic()
    assert evaluate("${jsonencode(local.l59)}", scope) is UNKNOWN
    assert evaluate("${local.l59 == local.l59}", scope) is UNKNOWN
    assert evaluate("${length(flatten(local.l59))}", scope) is UNKNOWN
    assert evaluate("${length(local.l59)}", scope) == 2
    assert time.monotonic() - start < 20
