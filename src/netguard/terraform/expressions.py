"""Evaluate the Terraform expressions that python-hcl2 leaves in attribute values, as far as they can be known.

hcl2 (bc-python-hcl2 0.4.3) returns each non-literal expression as a string wrapped in `${...}` and keeps
quoted strings raw (escapes unprocessed). Inside an expression it renders tuple and object literals as
Python reprs (`['a', '${var.b}']`, `{'k': 1}`, `True`, `None`) whose strings are again raw hcl2 values.
This module parses both notations and evaluates them with Terraform's rules. What it cannot know
(resources, unset variables, unsupported functions) is UNKNOWN, and so is any input it cannot parse and
any evaluation Terraform would reject: callers reason about guardrails, they never see an exception.

hcl2 drops parentheses: `(a || b) && c` arrives as `${a || b && c}`, which evaluates differently. Where
precedence matters (count, for_each), evaluate the source text instead: `evaluate("${" + text + "}", scope)`;
the parser reads Terraform's own syntax, comments included.

Values: str, int (every integral number), float, bool, None (null), list (tuples, lists and sets) and dict
(objects and maps). A set is a list without duplicates, sorted when all its elements are strings or all
are numbers (Terraform orders such sets that way), else in first-occurrence order. A collection may hold
UNKNOWN elements (its length is known, an element is not); is_known() tells whether a value is whole.

Deliberate differences from Terraform:
- `&&` and `||` decide from one known operand (false && unknown is false). Terraform does not
  short-circuit, but the other operand cannot change the result, so this is sound for our reasoning.
- `==` on partly unknown collections is false as soon as a known part differs.
- Type unification is partial: tolist/toset/tomap turn mixed string/number/bool elements into strings,
  a conditional returns its chosen branch unconverted.
- Numbers are Python ints and floats; a division by zero is an error rather than infinity.
- length() and substr() count code points, not grapheme clusters.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import ipaddress
import json
import math
import re
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, ClassVar, NoReturn, Protocol

_MAX_DEPTH = 32  # expression nesting; keeps parsing and evaluation far below Python's recursion limit


class Unknown:
    """The type of UNKNOWN: a value known only at apply time, or one this module cannot compute."""

    __slots__ = ()
    _instance: ClassVar[Unknown | None] = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __reduce__(self) -> str:
        return "UNKNOWN"  # unpickles (e.g. in a scan worker) and copies to the same singleton


UNKNOWN = Unknown()


@dataclass(frozen=True, slots=True)
class Wildcard:
    """A traversal step naming no single element: the splat (text "*") or a computed index, kept as
    source text so that callers can recognise `count.index`, `each.key` or `var.i`."""

    text: str


SPLAT = Wildcard("*")


class Key(str):
    """A literal string index (`x["a"]`): equal to its text, but told apart from an attribute name."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Reference:
    """A traversal rooted at a name. `aws_vpc.this[count.index].id` is
    Reference("aws_vpc", ("this", Wildcard("count.index"), "id")); attribute names are str, literal
    string keys Key (a str), literal list indexes int, `[*]` and `.*` are SPLAT."""

    root: str
    parts: tuple[str | int | Wildcard, ...]


class Scope(Protocol):
    """Where evaluation finds the names it does not bind itself (for-expression variables)."""

    def lookup(self, root: str, path: list[str | int]) -> Any:
        """The value of `root.path...` or UNKNOWN. path holds the attribute names and known keys after
        root up to the first splat or unknown index; an exception counts as an evaluation error, which
        try() and can() observe."""
        ...


@dataclass
class Bindings:
    """A Scope for one module: variable values, local expressions, and one instance's count/each.

    `variables` hold evaluated values (evaluate() raw defaults first). `local_values` hold raw hcl2
    values, evaluated on first use and memoised; a local that depends on itself reads UNKNOWN. Locals see
    no count/each, as in Terraform, so the copies for_instance() makes share the memo.
    """

    variables: Mapping[str, Any] = field(default_factory=dict)
    local_values: Mapping[str, Any] = field(default_factory=dict)
    count_index: Any = UNKNOWN
    each_key: Any = UNKNOWN
    each_value: Any = UNKNOWN
    path_module: Any = UNKNOWN
    path_root: Any = UNKNOWN
    workspace: Any = UNKNOWN
    _memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def for_instance(self, count_index: Any = UNKNOWN, each_key: Any = UNKNOWN, each_value: Any = UNKNOWN) -> Bindings:
        """The same module seen from one count/for_each instance."""
        copy = replace(self, count_index=count_index, each_key=each_key, each_value=each_value)
        copy._memo = self._memo
        return copy

    def lookup(self, root: str, path: list[str | int]) -> Any:
        if not path or not isinstance(path[0], str):
            return UNKNOWN
        name = path[0]
        if root == "var":
            value = self.variables.get(name, UNKNOWN)
        elif root == "local":
            value = self._local(name)
        else:
            value = {
                ("count", "index"): self.count_index,
                ("each", "key"): self.each_key,
                ("each", "value"): self.each_value,
                ("path", "module"): self.path_module,
                ("path", "root"): self.path_root,
                ("terraform", "workspace"): self.workspace,
            }.get((root, name), UNKNOWN)
        for key in path[1:]:
            value = _get(value, key)
        return value

    def _local(self, name: str) -> Any:
        if name not in self._memo:
            if name not in self.local_values:
                return UNKNOWN
            self._memo[name] = UNKNOWN  # what a cycle back to this local reads
            self._memo[name] = evaluate(self.local_values[name], self.for_instance())
        return self._memo[name]


def evaluate(value: Any, scope: Scope, *, max_items: int = 100_000) -> Any:
    """The Terraform value of a raw hcl2 value, UNKNOWN where it cannot be known. Never raises.

    Lists and dicts are evaluated element by element (an element that fails is UNKNOWN; keys starting
    with `__`, hcl2's line markers, are dropped). Produced collections are capped at max_items elements,
    strings at 16 * max_items characters, and the work of one call at 10 * max_items steps.
    """
    return _Evaluator(scope, max_items).raw(value)


def is_known(value: Any) -> bool:
    """Whether value holds no UNKNOWN at any depth (visits shared sub-values once)."""
    stack, seen = [value], set()
    while stack:
        item = stack.pop()
        if item is UNKNOWN:
            return False
        if isinstance(item, list | dict) and id(item) not in seen:
            seen.add(id(item))
            stack.extend(item.values() if isinstance(item, dict) else item)
    return True


def references(value: Any) -> list[Reference]:
    """Every name-rooted traversal in a raw hcl2 value's expressions, in source order, duplicates kept.

    Names bound by for-expressions are not references; text inside string literals is not either.
    """
    found: list[Reference] = []
    with contextlib.suppress(RecursionError):  # absurdly nested input: what was found so far
        _visit_raw(value, found)
    return found


# --- Syntax tree: private, immutable, matched structurally ------------------------------------------

_Lit = namedtuple("_Lit", "value")
_Tmpl = namedtuple("_Tmpl", "parts")  # literal text (str) and interpolated expressions
_Var = namedtuple("_Var", "name")
_Attr = namedtuple("_Attr", "name")
_Index = namedtuple("_Index", "key text")  # text: the key's source, for Wildcard
_Splat = namedtuple("_Splat", "full")  # [*] applies every following step per element, .* only attributes
_Traverse = namedtuple("_Traverse", "base steps")
_Unary = namedtuple("_Unary", "op operand")
_Binary = namedtuple("_Binary", "op left right")
_Cond = namedtuple("_Cond", "condition then other")
_Call = namedtuple("_Call", "name args")
_Tuple = namedtuple("_Tuple", "items")
_Object = namedtuple("_Object", "pairs")
_For = namedtuple("_For", "key_var value_var collection key value condition group")  # key None: tuple form
_Concat = namedtuple("_Concat", "inner")  # joins a list of template pieces: what %{if} and %{for} make
_Node = _Lit | _Tmpl | _Traverse | _Unary | _Binary | _Cond | _Call | _Tuple | _Object | _For | _Concat


class _SyntaxError(Exception):
    pass


class _BadEscape(_SyntaxError):
    pass


class _EvalError(Exception):
    """Terraform would reject the expression: try() and can() see it."""


class _Limit(Exception):
    """A bound of this module was hit: the result is UNKNOWN, whatever try() or can() would say."""


def _fail(why: str) -> NoReturn:
    raise _EvalError(why)


# --- Parser --------------------------------------------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_BARE_KEY = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_-]*)\s*(?:=(?![=>])|:)")
_FOR_HEAD = re.compile(r"for\s+[A-Za-z_]")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_SPACE = re.compile(r"(?:\s+|#[^\n]*|//[^\n]*|/\*.*?\*/)*", re.S)  # hcl2 drops comments; source text has them
_DOT_STEP = re.compile(r"\.(?:([0-9]+)|([A-Za-z_][A-Za-z0-9_-]*))")  # .name, or legacy .0
_PY_STRING = {q: re.compile(rf"{q}(?:[^{q}\\]|\\.)*{q}", re.S) for q in "'\""}
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
_LITERALS = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}
_OPERATORS = (("||",), ("&&",), ("==", "!="), ("<=", ">=", "<", ">"), ("+", "-"), ("*", "/", "%"))


@functools.lru_cache(maxsize=4096)
def _parse_raw(text: str) -> _Tmpl | None:
    try:
        return _raw_template(text)
    except Exception:  # a syntax error, or a literal Python cannot represent
        return None


def _raw_template(text: str, depth: int = 0) -> _Tmpl:
    """A whole raw hcl2 string. Backslash escapes apply unless it is a heredoc: it spans lines or, as hcl2
    drops a heredoc's last newline, it holds a backslash that is no valid escape (a quoted string cannot)."""
    try:
        return _Parser(text, depth).template(escapes="\n" not in text)
    except _BadEscape:
        return _Parser(text, depth).template(escapes=False)


class _Parser:
    """Recursive descent over HCL expression text as hcl2 renders it (and as Terraform writes it)."""

    def __init__(self, text: str, depth: int = 0) -> None:
        self.text = text
        self.pos = 0
        self.depth = depth
        self.in_literal = False  # inside a tuple/object literal, which hcl2 renders as a Python repr
        self.strip_next = False  # a `~}` strip marker asks to trim the next literal text

    def fail(self, why: str) -> NoReturn:
        raise _SyntaxError(f"{why} at offset {self.pos}")

    def _descend(self, step: int) -> None:
        """Track nesting; a failed parse is discarded whole, so only success paths step back up."""
        self.depth += step
        if self.depth > _MAX_DEPTH:
            self.fail("expression nested too deeply")

    def _skip_space(self) -> None:
        self.pos = _SPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def _take(self, token: str) -> bool:
        if self.text.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def _accept(self, token: str) -> bool:
        self._skip_space()
        return self._take(token)

    def _expect(self, token: str) -> None:
        if not self._accept(token):
            self.fail(f"expected {token!r}")

    def _ident(self) -> str:
        self._skip_space()
        match = _IDENT.match(self.text, self.pos)
        if match is None:
            self.fail("expected a name")
        self.pos = match.end()
        return match.group()

    def _keyword(self, word: str) -> bool:
        self._skip_space()
        match = _IDENT.match(self.text, self.pos)
        if match is None or match.group() != word:
            return False
        self.pos = match.end()
        return True

    # Templates

    def template(self, *, escapes: bool) -> _Tmpl:
        return _Tmpl(tuple(self._template_parts(None, escapes, ())[0]))

    def _template_parts(self, quote: str | None, escapes: bool, stops: tuple[str, ...]) -> tuple[list, str | None]:
        """Template pieces up to the closing quote, the end of text, or a directive named in stops."""
        special = re.compile("[$%" + ("\\\\" if escapes else "") + (quote or "") + "]")
        parts: list[str | _Node] = []
        text: list[str] = []

        def flush() -> None:
            literal = "".join(text)
            text.clear()
            if self.strip_next:
                literal, self.strip_next = literal.lstrip(), False
            if literal:
                parts.append(literal)

        while True:
            match = special.search(self.text, self.pos)
            end = match.start() if match else len(self.text)
            text.append(self.text[self.pos : end])
            self.pos = end
            if match is None:
                if quote:
                    self.fail("unterminated string")
                flush()
                return parts, None
            char = self.text[end]
            if char == quote:
                self.pos += 1
                flush()
                return parts, None
            if char == "\\":
                text.append(self._escape())
                continue
            if self.text.startswith(("$${", "%%{"), end):
                text.append(char + "{")
                self.pos += 3
                continue
            if not self.text.startswith("{", end + 1):
                text.append(char)
                self.pos += 1
                continue
            self.pos += 2
            strip = self._take("~")
            flush()
            if strip and parts and isinstance(parts[-1], str):
                parts[-1] = parts[-1].rstrip()
            if char == "$":
                parts.append(self.expr())
                self._close()
                continue
            keyword = self._ident()
            if keyword in stops:
                self._close()
                return parts, keyword
            self._descend(1)
            parts.append(self._directive(keyword, quote, escapes))
            self._descend(-1)

    def _escape(self) -> str:
        code = self.text[self.pos + 1 : self.pos + 2]
        if code in _ESCAPES:
            self.pos += 2
            return _ESCAPES[code]
        width = {"u": 4, "U": 8}.get(code, 0)
        digits = self.text[self.pos + 2 : self.pos + 2 + width]
        if not width or len(digits) != width or not re.fullmatch(r"[0-9A-Fa-f]+", digits):
            raise _BadEscape(f"invalid escape at offset {self.pos}")
        self.pos += 2 + width
        return chr(int(digits, 16))

    def _close(self) -> None:
        self._skip_space()
        self.strip_next = self._take("~")
        if not self._take("}"):
            self.fail("expected '}'")

    def _directive(self, keyword: str, quote: str | None, escapes: bool) -> _Node:
        if keyword == "if":
            condition = self.expr()
            self._close()
            then, stop = self._template_parts(quote, escapes, ("else", "endif"))
            other: list[str | _Node] = []
            if stop == "else":
                other, stop = self._template_parts(quote, escapes, ("endif",))
            if stop != "endif":
                self.fail("unterminated %{if}")
            # a one-piece list so that the result is always text, even for a lone interpolation
            return _Concat(_Tuple((_Cond(condition, _Tmpl(tuple(then)), _Tmpl(tuple(other))),)))
        if keyword == "for":
            key_var, value_var, collection = self._for_intro()
            self._close()
            body, stop = self._template_parts(quote, escapes, ("endfor",))
            if stop != "endfor":
                self.fail("unterminated %{for}")
            return _Concat(_For(key_var, value_var, collection, None, _Tmpl(tuple(body)), None, False))
        self.fail(f"unknown directive {keyword!r}")

    # Expressions

    def expr(self) -> _Node:
        self._descend(1)
        result = self._binary(0)
        if self._accept("?"):
            then = self.expr()
            self._expect(":")
            result = _Cond(result, then, self.expr())
        self._descend(-1)
        return result

    def _binary(self, level: int) -> _Node:
        if level == len(_OPERATORS):
            return self._unary()
        left = self._binary(level + 1)
        while op := self._operator(_OPERATORS[level]):
            left = _Binary(op, left, self._binary(level + 1))
        return left

    def _operator(self, ops: tuple[str, ...]) -> str | None:
        self._skip_space()
        return next((op for op in ops if self._take(op)), None)

    def _unary(self) -> _Node:
        self._skip_space()
        for op in ("!", "-"):
            if self._take(op):
                self._descend(1)
                result = _Unary(op, self._unary())
                self._descend(-1)
                return result
        return self._postfix()

    def _postfix(self) -> _Node:
        base = self._primary()
        steps: list[_Attr | _Index | _Splat] = []
        while True:
            start = self.pos
            self._skip_space()
            if self._take("[*]"):
                steps.append(_Splat(full=True))
            elif self._take(".*"):
                steps.append(_Splat(full=False))
            elif self._take("["):
                key_start = self.pos
                key = self.expr()
                steps.append(_Index(key, self.text[key_start : self.pos].strip()))
                self._expect("]")
            elif match := _DOT_STEP.match(self.text, self.pos):
                self.pos = match.end()
                digits, name = match.groups()
                steps.append(_Index(_Lit(int(digits)), digits) if digits else _Attr(name))
            else:
                self.pos = start
                break
        return _Traverse(base, tuple(steps)) if steps or isinstance(base, _Var) else base

    def _primary(self) -> _Node:
        self._skip_space()
        char = self.text[self.pos : self.pos + 1]
        if number := _NUMBER.match(self.text, self.pos):
            self.pos = number.end()
            return _Lit(int(number.group()) if number.group().isdigit() else _norm(float(number.group())))
        if char in ("'", '"'):
            python = _PY_STRING[char].match(self.text, self.pos)
            # hcl2's reprs use "..." only for strings holding a ': any other "..." is HCL, even in a literal
            if char == "'" or (self.in_literal and python and "'" in python.group()):
                return self._python_string(python)
            self.pos += 1
            return _Tmpl(tuple(self._template_parts('"', True, ())[0]))
        if self._take("("):
            inner = self.expr()
            self._expect(")")
            return inner
        if char in ("[", "{"):
            return self._bracketed("]" if char == "[" else "}")
        name = self._ident()
        if name in _LITERALS:
            return _Lit(_LITERALS[name])
        while self._take("::"):  # provider::aws::arn_parse(...)
            name += "::" + self._ident()
        if self._accept("("):
            return _Call(name, self._items(")"))
        return _Var(name)

    def _python_string(self, match: re.Match[str] | None) -> _Tmpl:
        """A string of hcl2's repr of a tuple or object: its content is again a raw hcl2 value."""
        if match is None:
            self.fail("unterminated string")
        self.pos = match.end()
        return _raw_template(ast.literal_eval(match.group()), self.depth + 1)

    def _items(self, close: str) -> tuple[_Node, ...]:
        items = []
        while not self._accept(close):
            items.append(self.expr())
            if not self._accept(","):
                self._expect(close)
                break
        return tuple(items)

    def _bracketed(self, close: str) -> _Node:
        self.pos += 1
        self._skip_space()
        outer = self.in_literal
        try:
            if _FOR_HEAD.match(self.text, self.pos):
                self.in_literal = False
                return self._for(close)
            self.in_literal = True
            return _Tuple(self._items("]")) if close == "]" else _Object(self._pairs())
        finally:
            self.in_literal = outer

    def _pairs(self) -> tuple[tuple[_Node, _Node], ...]:
        pairs = []
        while not self._accept("}"):
            if bare := _BARE_KEY.match(self.text, self.pos):
                self.pos = bare.end()
                key: _Node = _Lit(bare.group(1))
            else:
                key = self.expr()
                self._skip_space()
                if not (self._take(":") or (self._take("=") and not self.text.startswith(("=", ">"), self.pos))):
                    self.fail("expected '=' or ':'")
            pairs.append((key, self.expr()))
            self._accept(",")
        return tuple(pairs)

    def _for_intro(self) -> tuple[str | None, str, _Node]:
        first = self._ident()
        second = self._ident() if self._accept(",") else None
        if not self._keyword("in"):
            self.fail("expected 'in'")
        collection = self.expr()
        return (first, second, collection) if second else (None, first, collection)

    def _for(self, close: str) -> _For:
        self._ident()  # "for"
        key_var, value_var, collection = self._for_intro()
        self._expect(":")
        key, value = None, self.expr()
        if close == "}":
            self._expect("=>")
            key, value = value, self.expr()
        group = close == "}" and self._accept("...")
        condition = self.expr() if self._keyword("if") else None
        self._expect(close)
        return _For(key_var, value_var, collection, key, value, condition, group)


# --- References ----------------------------------------------------------------------------------------


def _visit_raw(value: Any, found: list[Reference]) -> None:
    if isinstance(value, str):
        if (node := _parse_raw(value)) is not None:
            _collect(node, frozenset(), found)
    elif isinstance(value, list):
        for item in value:
            _visit_raw(item, found)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not str(key).startswith("__"):
                _visit_raw(key, found)
                _visit_raw(item, found)


def _collect(node: _Node, bound: frozenset[str], found: list[Reference]) -> None:
    match node:
        case _Traverse(_Var(name), steps):
            if name not in bound:
                found.append(Reference(name, tuple(_part(step) for step in steps)))
            for step in steps:
                if isinstance(step, _Index):
                    _collect(step.key, bound, found)
        case _For(key_var, value_var, collection, key, value, condition, _):
            _collect(collection, bound, found)
            inner = bound | {value_var, key_var or value_var}
            for child in (key, value, condition):
                if child is not None:
                    _collect(child, inner, found)
        case _:
            for child in _children(node):
                _collect(child, bound, found)


def _children(node: _Node) -> Iterator[_Node]:
    match node:
        case _Traverse(base, steps):
            yield base
            yield from (step.key for step in steps if isinstance(step, _Index))
        case _Tmpl(parts):
            yield from (part for part in parts if not isinstance(part, str))
        case _Unary(_, operand) | _Concat(operand):
            yield operand
        case _Binary(_, left, right):
            yield from (left, right)
        case _Cond(condition, then, other):
            yield from (condition, then, other)
        case _Call(_, items) | _Tuple(items):
            yield from items
        case _Object(pairs):
            for key, value in pairs:
                yield from (key, value)


def _part(step: _Attr | _Index | _Splat) -> str | int | Wildcard:
    match step:
        case _Attr(name):
            return name
        case _Index(_Lit(value)) if isinstance(value, int) and not isinstance(value, bool):
            return value
        case _Index(_Tmpl(parts)) if all(isinstance(part, str) for part in parts):
            return Key("".join(parts))  # type: ignore[arg-type]
        case _Index(_, text):
            return Wildcard(text)
    return SPLAT


# --- Evaluation ----------------------------------------------------------------------------------------


class _Evaluator:
    """One evaluate() call: the scope, the bounds, and the work budget left."""

    def __init__(self, scope: Scope, max_items: int) -> None:
        self.scope = scope
        self.max_items = max_items
        self.max_chars = 16 * max_items
        self.budget = 10 * max_items

    def tick(self, cost: int = 1) -> None:
        self.budget -= cost
        if self.budget < 0:
            raise _Limit("evaluation budget spent")

    def check_size(self, length: int, *, chars: bool = False) -> None:
        if length > (self.max_chars if chars else self.max_items):
            raise _Limit("result too large")

    def sized(self, value: Any) -> Any:
        if isinstance(value, str | list | dict):
            self.check_size(len(value), chars=isinstance(value, str))
        return value

    def weigh(self, value: Any) -> None:
        """Charge for walking value before a recursive helper walks it: shared sub-values (a local used
        twice, used twice...) would otherwise make that walk exponential."""
        stack = [value]
        while stack:
            item = stack.pop()
            self.tick(1 + len(item) // 64 if isinstance(item, str) else 1)
            if isinstance(item, list | dict):
                stack.extend(item.values() if isinstance(item, dict) else item)

    def join_text(self, pieces: list[str], separator: str = "") -> str:
        self.check_size(sum(map(len, pieces)) + len(separator) * max(len(pieces) - 1, 0), chars=True)
        return separator.join(pieces)

    def raw(self, value: Any) -> Any:
        try:
            if isinstance(value, str):
                node = _parse_raw(value)
                return UNKNOWN if node is None else self.eval(node, {})
            if isinstance(value, list):
                return [self.raw(item) for item in value]
            if isinstance(value, dict):
                result = {}
                for raw_key, item in value.items():
                    if str(raw_key).startswith("__"):
                        continue
                    key = self.raw(raw_key)
                    if key is UNKNOWN:
                        return UNKNOWN
                    result[_to_string(key)] = self.raw(item)
                return result
            if value is None or isinstance(value, bool | int):
                return value
            return _norm(value) if isinstance(value, float) else UNKNOWN
        except Exception:
            return UNKNOWN

    def eval(self, node: _Node, env: dict[str, Any]) -> Any:
        self.tick()
        match node:
            case _Lit(value):
                return value
            case _Tmpl(parts):
                return self._template(parts, env)
            case _Traverse(base, steps):
                return self._traverse(base, steps, env)
            case _Unary(op, operand):
                value = self.eval(operand, env)
                if value is UNKNOWN:
                    return UNKNOWN
                return (not _to_bool(value)) if op == "!" else _norm(-_to_number(value))
            case _Binary(op, left, right):
                return self._binary(op, self.eval(left, env), self.eval(right, env))
            case _Cond(condition, then, other):
                return self._conditional(condition, then, other, env)
            case _Call(name, args):
                return self._call(name, args, env)
            case _Tuple(items):
                return [self.eval(item, env) for item in items]
            case _Object(pairs):
                result = {}
                for key_node, value_node in pairs:
                    key = self.eval(key_node, env)
                    if key is UNKNOWN:
                        return UNKNOWN
                    result[_to_string(key)] = self.eval(value_node, env)
                return result
            case _For():
                return self._for(node, env)
            case _Concat(inner):
                pieces = self.eval(inner, env)
                if pieces is UNKNOWN or not is_known(pieces):
                    return UNKNOWN
                return self.join_text([_to_string(piece) for piece in pieces])
        _fail(f"cannot evaluate {node!r}")

    def _template(self, parts: tuple[str | _Node, ...], env: dict[str, Any]) -> Any:
        if len(parts) == 1 and not isinstance(parts[0], str):
            return self.eval(parts[0], env)  # "${x}" is x itself, not converted to a string
        values = [part if isinstance(part, str) else self.eval(part, env) for part in parts]
        if any(value is UNKNOWN for value in values):
            return UNKNOWN
        return self.join_text([_to_string(value) for value in values])

    def _traverse(self, base: _Node, steps: tuple[_Attr | _Index | _Splat, ...], env: dict[str, Any]) -> Any:
        resolved: list[tuple[str, Any]] = []
        for step in steps:
            match step:
                case _Attr(name):
                    resolved.append(("attr", name))
                case _Index(key):
                    resolved.append(("index", self.eval(key, env)))
                case _Splat(full):
                    resolved.append(("splat" if full else "attr-splat", None))
        if not isinstance(base, _Var):
            return self._apply(self.eval(base, env), resolved)
        if base.name in env:
            return self._apply(env[base.name], resolved)
        known = 0
        while known < len(resolved) and resolved[known][0] in ("attr", "index") and _is_key(resolved[known][1]):
            known += 1
        value = self.scope.lookup(base.name, [key for _, key in resolved[:known]])
        return self._apply(value, resolved[known:])

    def _apply(self, value: Any, steps: list[tuple[str, Any]]) -> Any:
        position = 0
        while position < len(steps):
            kind, key = steps[position]
            position += 1
            if kind in ("attr", "index"):
                value = _get(value, key)
                continue
            per_element = ("attr",) if kind == "attr-splat" else ("attr", "index")
            end = position
            while end < len(steps) and steps[end][0] in per_element:
                end += 1
            if value is UNKNOWN:
                return UNKNOWN
            elements = [] if value is None else value if isinstance(value, list) else [value]
            self.tick(len(elements))
            value = [self._apply(element, steps[position:end]) for element in elements]
            position = end
        return value

    def _binary(self, op: str, left: Any, right: Any) -> Any:
        if op in ("==", "!="):
            self.weigh(left)
            self.weigh(right)
            equal = _equal(left, right)
            return equal if equal is UNKNOWN or op == "==" else not equal
        if op in ("&&", "||"):
            deciding = op == "||"  # true decides ||, false decides &&
            known = [_to_bool(value) for value in (left, right) if value is not UNKNOWN]
            if deciding in known:
                return deciding
            return UNKNOWN if len(known) < 2 else not deciding
        if left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        return _ARITHMETIC[op](_to_number(left), _to_number(right))

    def _conditional(self, condition: _Node, then: _Node, other: _Node, env: dict[str, Any]) -> Any:
        decided = self.eval(condition, env)
        if decided is not UNKNOWN:
            return self.eval(then if _to_bool(decided) else other, env)
        first, second = self.eval(then, env), self.eval(other, env)
        self.weigh(first)
        self.weigh(second)
        return first if _equal(first, second) is True else UNKNOWN

    def _call(self, name: str, args: tuple[_Node, ...], env: dict[str, Any]) -> Any:
        if name == "try":
            for ok, value in (self._attempt(arg, env) for arg in args):
                if ok:
                    return value if is_known(value) else UNKNOWN  # an unknown value may still fail
            _fail("no argument of try() evaluated")
        if name == "can" and len(args) == 1:
            ok, value = self._attempt(args[0], env)
            return UNKNOWN if ok and not is_known(value) else ok
        if name not in _FUNCTIONS:
            return UNKNOWN
        impl, needs_whole = _FUNCTIONS[name]
        values = [self.eval(arg, env) for arg in args]
        if any(value is UNKNOWN for value in values) or (needs_whole and not all(map(is_known, values))):
            return UNKNOWN
        return self.sized(impl(self, *values))

    def _attempt(self, node: _Node, env: dict[str, Any]) -> tuple[bool, Any]:
        """(True, value), or (False, None) where Terraform reports an error; our own bounds propagate."""
        try:
            return True, self.eval(node, env)
        except (_Limit, RecursionError):
            raise
        except Exception:
            return False, None

    def _for(self, node: _For, env: dict[str, Any]) -> Any:
        collection = self.eval(node.collection, env)
        if collection is UNKNOWN:
            return UNKNOWN
        if isinstance(collection, list):
            pairs: list[tuple[Any, Any]] = list(enumerate(collection))
        elif isinstance(collection, dict):
            pairs = [(key, collection[key]) for key in sorted(collection)]  # Terraform iterates maps by key
        else:
            _fail("for expression over a non-collection")
        items: list[Any] = []
        mapping: dict[str, Any] = {}
        for key, value in pairs:
            self.tick()
            inner = {**env, node.value_var: value}
            if node.key_var:
                inner[node.key_var] = key
            if node.condition is not None:
                keep = self.eval(node.condition, inner)
                if keep is UNKNOWN:
                    return UNKNOWN
                if not _to_bool(keep):
                    continue
            if node.key is None:
                items.append(self.eval(node.value, inner))
                continue
            result_key = self.eval(node.key, inner)
            if result_key is UNKNOWN:
                return UNKNOWN
            result_key = _to_string(result_key)
            if node.group:
                mapping.setdefault(result_key, []).append(self.eval(node.value, inner))
            elif result_key in mapping:
                _fail(f"duplicate key {result_key!r} in for expression")
            else:
                mapping[result_key] = self.eval(node.value, inner)
        return self.sized(items if node.key is None else mapping)


# --- Values --------------------------------------------------------------------------------------------

_NUMERIC = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_key(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _norm(number: float) -> int | float:
    """Numbers are int when integral; non-finite results are errors (Terraform has no NaN)."""
    if isinstance(number, float):
        if not math.isfinite(number):
            _fail("number out of range")
        if number.is_integer():
            return int(number)
    return number


def _to_number(value: Any) -> int | float:
    if _is_number(value):
        return value
    if isinstance(value, str) and _NUMERIC.fullmatch(value):
        return int(value) if value.lstrip("+-").isdigit() else _norm(float(value))
    _fail(f"a number is required, not {value!r}")


def _to_int(value: Any) -> int:
    number = _norm(_to_number(value))
    if not isinstance(number, int):
        _fail(f"a whole number is required, not {value!r}")
    return number


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool) or value in ("true", "false"):
        return value in (True, "true")
    _fail(f"a bool is required, not {value!r}")


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        normal = _norm(value)
        return str(normal) if isinstance(normal, int) else format(Decimal(repr(normal)), "f")
    _fail(f"a string is required, not {value!r}")


def _get(value: Any, key: Any) -> Any:
    """value[key] with Terraform's key conversions; a missing key or index is an error."""
    if value is UNKNOWN or key is UNKNOWN:
        return UNKNOWN
    if isinstance(value, dict):
        return value[_to_string(key)]
    if isinstance(value, list):
        index = _to_int(key)
        if index < 0:
            _fail("negative index")
        return value[index]
    _fail(f"cannot index {type(value).__name__}")


def _equal(left: Any, right: Any) -> bool | Unknown:
    """Terraform ==: no conversion between types; unknown unless a known part already differs."""
    if left is UNKNOWN or right is UNKNOWN:
        return UNKNOWN
    if _is_number(left) and _is_number(right):
        return left == right
    if type(left) is not type(right):
        return False
    if isinstance(left, list | dict):
        if len(left) != len(right) or (isinstance(left, dict) and left.keys() != right.keys()):
            return False
        pairs = [(left[k], right[k]) for k in left] if isinstance(left, dict) else zip(left, right, strict=True)
        results = [_equal(a, b) for a, b in pairs]
        return False if any(r is False for r in results) else UNKNOWN if UNKNOWN in results else True
    return left == right


def _kind(value: Any) -> str:
    return "number" if _is_number(value) else type(value).__name__  # bool, str, list, dict, NoneType


def _freeze(value: Any) -> Any:
    """A hashable form that keeps Terraform's distinctions (true is not 1)."""
    if isinstance(value, list):
        return ("list", tuple(map(_freeze, value)))
    if isinstance(value, dict):
        return ("dict", tuple((key, _freeze(value[key])) for key in sorted(value)))
    return (_kind(value), value)


def _unify(items: list) -> list:
    """Terraform's element type unification, for primitives: mixed with strings, all become strings."""
    kinds = {_kind(item) for item in items if item is not None}
    if len(kinds) <= 1:
        return items
    if kinds <= {"str", "number", "bool"} and "str" in kinds:
        return [None if item is None else _to_string(item) for item in items]
    _fail("elements have no common type")


def _divide(left: int | float, right: int | float) -> int | float:
    if right == 0:
        _fail("division by zero")
    if isinstance(left, int) and isinstance(right, int) and left % right == 0:
        return left // right
    return _norm(left / right)


def _modulo(left: int | float, right: int | float) -> int | float:
    if right == 0:
        return left  # what cty does
    if isinstance(left, int) and isinstance(right, int):
        remainder = abs(left) % abs(right)  # truncated division: the sign follows the dividend
        return remainder if left >= 0 else -remainder
    return _norm(math.fmod(left, right))


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: _norm(a + b),
    "-": lambda a, b: _norm(a - b),
    "*": lambda a, b: _norm(a * b),
    "/": _divide,
    "%": _modulo,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


# --- Functions -----------------------------------------------------------------------------------------
# Implementations take the evaluator (for its bounds) and the evaluated arguments. An exception is a
# Terraform error; UNKNOWN is returned where Terraform succeeds but this module does not compute it.


def _list(value: Any) -> list:
    return value if isinstance(value, list) else _fail("a list is required")


def _map(value: Any) -> dict:
    return value if isinstance(value, dict) else _fail("a map is required")


def _strings(values: list) -> list[str]:
    return [_to_string(value) for value in values]


def _concat(ev: _Evaluator, *values: Any) -> list:
    ev.check_size(sum(len(_list(value)) for value in values))
    return [item for value in values for item in value]


def _element(ev: _Evaluator, values: Any, index: Any) -> Any:
    position = _to_int(index)
    if position < 0 or not _list(values):
        _fail("element() of an empty list or with a negative index")
    return values[position % len(values)]


def _lookup(ev: _Evaluator, mapping: Any, key: Any, *default: Any) -> Any:
    name = _to_string(key)
    if name in _map(mapping):
        return mapping[name]
    if len(default) != 1:
        _fail(f"lookup() found no key {name!r} and has no default")
    return default[0]


def _one(ev: _Evaluator, values: Any) -> Any:
    if len(_list(values)) > 1:
        _fail("one() of more than one element")
    return values[0] if values else None


def _unique(ev: _Evaluator, values: Any, *, as_set: bool = False) -> list:
    """distinct(), or toset(): Terraform orders a set of strings or of numbers, we keep it sorted."""
    ev.weigh(_list(values))
    unique = list({_freeze(item): item for item in (_unify(values) if as_set else values)}.values())
    if as_set and (all(isinstance(item, str) for item in unique) or all(map(_is_number, unique))):
        return sorted(unique)
    return unique


def _flatten(ev: _Evaluator, values: Any) -> list:
    ev.weigh(_list(values))
    flat: list = []

    def add(items: list) -> None:
        for item in items:
            add(item) if isinstance(item, list) else flat.append(item)

    add(values)
    return flat


def _range(ev: _Evaluator, *bounds: Any) -> list:
    numbers = [_to_number(bound) for bound in bounds]
    start, end = (0, numbers[0]) if len(numbers) == 1 else (numbers[0], numbers[1])
    step = numbers[2] if len(numbers) == 3 else -1 if end < start else 1
    if len(numbers) > 3 or step == 0 or (end > start if step < 0 else end < start):
        _fail("range() arguments disagree")
    count = math.ceil((end - start) / step)
    if count > 1024:
        _fail("range() makes more than 1024 values")  # Terraform's own limit
    return [_norm(start + position * step) for position in range(count)]


def _contains(ev: _Evaluator, values: Any, wanted: Any) -> bool:
    ev.weigh(_list(values))
    return any(_equal(value, wanted) is True for value in values)


def _format(ev: _Evaluator, spec: Any, *args: Any) -> Any:
    """%s, %d, %v (of a primitive) and %%; other verbs, flags and widths give UNKNOWN."""
    pieces, used, position, spec = [], 0, 0, _to_string(spec)
    for verb in re.finditer(r"%(.?)", spec, re.S):
        pieces.append(spec[position : verb.start()])
        position = verb.end()
        if verb.group(1) == "%":
            pieces.append("%")
            continue
        if not verb.group(1) or used == len(args) or args[used] is None:
            _fail("format() has too few arguments, or a null one")
        value, used = args[used], used + 1
        if verb.group(1) not in "sdv" or isinstance(value, list | dict):
            return UNKNOWN
        pieces.append(str(_to_int(value)) if verb.group(1) == "d" else _to_string(value))
    if used != len(args):
        _fail("format() has too many arguments")
    return ev.join_text([*pieces, spec[position:]])


def _split(separator: str, text: str) -> list[str]:
    return text.split(separator) if separator else list(text)  # Go splits "" into characters


def _replace(ev: _Evaluator, text: Any, old: Any, new: Any) -> Any:
    text, old, new = _to_string(text), _to_string(old), _to_string(new)
    if len(old) > 1 and old.startswith("/") and old.endswith("/"):
        return UNKNOWN  # a regular expression, in Go's syntax
    ev.check_size(len(text) + (text.count(old) if old else len(text) + 1) * len(new), chars=True)
    return text.replace(old, new)


def _substr(ev: _Evaluator, text: Any, offset: Any, length: Any) -> str:
    text, start, count = _to_string(text), _to_int(offset), _to_int(length)
    rest = text[max(start + len(text), 0) if start < 0 else start :]
    return rest if count < 0 else rest[:count]


def _zipmap(ev: _Evaluator, keys: Any, values: Any) -> dict:
    if len(_list(keys)) != len(_list(values)):
        _fail("zipmap() of lists of different lengths")
    return dict(zip(_strings(keys), values, strict=True))


def _jsonencode(ev: _Evaluator, value: Any) -> str:
    ev.weigh(value)
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    for char in "<>&\u2028\u2029":  # Go's encoder escapes these; they only occur inside strings
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def _cidrsubnet(ev: _Evaluator, prefix: Any, newbits: Any, netnum: Any) -> str:
    network = ipaddress.ip_network(_to_string(prefix), strict=False)
    bits, number = _to_int(newbits), _to_int(netnum)
    length = network.prefixlen + bits
    if bits < 0 or length > network.max_prefixlen or not 0 <= number < 2**bits:
        _fail("cidrsubnet() out of range")
    base = network.network_address + (number << (network.max_prefixlen - length))
    return f"{base}/{length}"


# name: (implementation, whether every argument must be wholly known; length([x]) is 1 without x)
_FUNCTIONS: dict[str, tuple[Callable[..., Any], bool]] = {
    "abs": (lambda ev, number: abs(_to_number(number)), True),
    "ceil": (lambda ev, number: math.ceil(_to_number(number)), True),
    "cidrsubnet": (_cidrsubnet, True),
    "coalesce": (lambda ev, *values: next(v for v in values if v is not None and v != ""), True),
    "coalescelist": (lambda ev, *values: next(v for v in map(_list, values) if v), False),
    "compact": (lambda ev, values: _strings([v for v in _list(values) if v is not None and v != ""]), True),
    "concat": (_concat, False),
    "contains": (_contains, True),
    "distinct": (_unique, True),
    "element": (_element, False),
    "flatten": (_flatten, True),
    "floor": (lambda ev, number: math.floor(_to_number(number)), True),
    "format": (_format, True),
    "join": (lambda ev, sep, *lists: ev.join_text(_strings(_concat(ev, *lists)), _to_string(sep)), True),
    "jsonencode": (_jsonencode, True),
    "keys": (lambda ev, mapping: sorted(_map(mapping)), False),
    "length": (lambda ev, value: len(value) if isinstance(value, str | list | dict) else _fail("length()"), False),
    "lookup": (_lookup, False),
    "lower": (lambda ev, text: _to_string(text).lower(), True),
    "max": (lambda ev, *numbers: max(map(_to_number, numbers)), True),
    "merge": (lambda ev, *maps: {k: v for m in maps if m is not None for k, v in _map(m).items()}, False),
    "min": (lambda ev, *numbers: min(map(_to_number, numbers)), True),
    "one": (_one, False),
    "range": (_range, True),
    "replace": (_replace, True),
    "split": (lambda ev, sep, text: _split(_to_string(sep), _to_string(text)), True),
    "substr": (_substr, True),
    "tobool": (lambda ev, value: None if value is None else _to_bool(value), True),
    "tolist": (lambda ev, values: _unify(_list(values)), True),
    "tomap": (lambda ev, m: dict(zip(_map(m), _unify(list(m.values())), strict=True)), True),
    "tonumber": (lambda ev, value: None if value is None else _to_number(value), True),
    "toset": (lambda ev, values: _unique(ev, values, as_set=True), True),
    "tostring": (lambda ev, value: None if value is None else _to_string(value), True),
    "upper": (lambda ev, text: _to_string(text).upper(), True),
    "values": (lambda ev, mapping: [mapping[key] for key in sorted(_map(mapping))], False),
    "zipmap": (_zipmap, True),
}


def top_level(text: str) -> Iterator[tuple[int, str]]:
    """(index, character) of an expression's text outside brackets and string literals: where its
    top-level commas, `?` and `:` are."""
    depth, quote = 0, False
    for index, char in enumerate(text):
        if quote:
            quote = char != '"' or text[index - 1] == "\\"
        elif char == '"':
            quote = True
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0:
            yield index, char
