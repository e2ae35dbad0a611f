"""Parse CloudFormation YAML and JSON into plain data that remembers where every key was written.

Findings and suppressions need the line of a resource whatever the layout (2- or 4-space YAML,
pretty-printed or minified JSON), so positions come from the parser, never from guessing at the
text with patterns. A mapping is a `MarkedDict`: a dict that also knows the line of each of its keys
and the lines it spans. Duplicate keys are an error, as they are for cfn-lint and CloudFormation.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

try:
    _BaseLoader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _BaseLoader = yaml.SafeLoader


class MarkedDict(dict):
    """A mapping with the 1-based line of each key and the first and last line of its body."""

    __slots__ = ("end", "key_lines", "start")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines: dict[Any, int] = {}
        self.start = 0
        self.end = 0

    def line_of(self, key: Any) -> int:
        """Line of key, or of the mapping itself when the key was not written (0 when unknown)."""
        return self.key_lines.get(key, self.start)


class DuplicateKeyError(ValueError):
    """A mapping names the same key twice; which value wins would be a guess."""

    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(f"duplicate key {key!r} (first at line {first})")
        self.line = line


# --- YAML ------------------------------------------------------------------------------------------
SHORT_FORMS = (
    "Ref",
    "Condition",
    "GetAtt",
    "Sub",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "Join",
    "Select",
    "Split",
    "FindInMap",
    "GetAZs",
    "ImportValue",
    "Base64",
    "Cidr",
    "Transform",
    "Length",
    "ToJsonString",
    "ForEach",
    # Rules-section functions
    "Contains",
    "EachMemberEquals",
    "EachMemberIn",
    "RefAll",
    "ValueOf",
    "ValueOfAll",
    "Implies",
)


def _last_content_line(node: yaml.Node) -> int:
    """1-based last line of a node's own content.

    A block collection's end mark is where the next token starts, which can be lines later, past
    comments that belong to the next resource; so a block collection ends where its last item ends.
    """
    while isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, yaml.MappingNode) else last
    mark = node.end_mark
    return mark.line if mark.column == 0 and mark.line > node.start_mark.line else mark.line + 1


class MarkedLoader(_BaseLoader):
    """libyaml-backed safe loader: marked mappings, short-form intrinsics as their long form."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> MarkedDict:  # type: ignore[override]
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(None, None, "expected a mapping", node.start_mark)
        mapping = MarkedDict()
        mapping.start = node.start_mark.line + 1
        mapping.end = _last_content_line(node)
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise yaml.constructor.ConstructorError(
                    None, None, "YAML merge keys (<<) are not supported by CloudFormation", key_node.start_mark
                )
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key that is not a scalar", key_node.start_mark
                )
            # Keys are names as written: `On`, `0x10` or `12` is a logical id, not a bool or a number.
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in mapping:
                raise DuplicateKeyError(key, line, mapping.key_lines[key])
            mapping[key] = self.construct_object(value_node, deep=True)
            mapping.key_lines[key] = line
        return mapping


def _construct_map(loader: MarkedLoader, node: yaml.MappingNode) -> MarkedDict:
    return loader.construct_mapping(node, deep=True)


def _construct_short_form(name: str):
    key = name if name in ("Ref", "Condition") else f"Fn::{name}"

    def construct(loader: MarkedLoader, node: yaml.Node) -> MarkedDict:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        wrapped = MarkedDict({key: value})
        wrapped.start = node.start_mark.line + 1
        wrapped.end = _last_content_line(node)
        wrapped.key_lines[key] = wrapped.start
        return wrapped

    return construct


def _construct_text(loader: MarkedLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


MarkedLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
# CloudFormation reads an unquoted 2012-10-17 as the string it looks like, not as a date.
MarkedLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_text)
for _name in SHORT_FORMS:
    MarkedLoader.add_constructor(f"!{_name}", _construct_short_form(_name))


def load_yaml_documents(text: str) -> list[Any]:
    """Every document of a YAML stream (a template is exactly one)."""
    return list(yaml.load_all(text, Loader=MarkedLoader))


# --- JSON ------------------------------------------------------------------------------------------
_JSON_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|[{}\[\],:]')


def _integer(text: str) -> int | str:
    """An integer, or its digits when Python would refuse to convert that many (over 4,300)."""
    return int(text) if len(text) <= 4000 else text


def _pairs(pairs: list[tuple[str, Any]]) -> MarkedDict:
    mapping = MarkedDict()
    for key, value in pairs:
        if key in mapping:
            raise DuplicateKeyError(key, 0, 0)
        mapping[key] = value
    return mapping


def load_json(text: str, mark: bool = True) -> Any:
    """JSON through the C decoder, then one pass over the tokens to record each key's line.

    The second pass walks the text in step with the decoded tree, so it only needs the structural
    tokens (strings, brackets, commas, colons); it costs several times the decode itself, so a large
    file that has no source lines to speak of (a Terraform plan) can skip it (mark=False).
    """
    if not mark:
        return json.loads(text, parse_int=_integer)  # plain objects: no lines to keep, so no hook to pay
    try:
        data = json.loads(text, object_pairs_hook=_pairs, parse_int=_integer)
    except DuplicateKeyError as exc:
        _raise_with_line(text, exc)
        raise
    if mark:
        _mark_json(text, data)
    return data


def _raise_with_line(text: str, exc: DuplicateKeyError) -> None:
    """Find where the duplicate key is written, for the error message."""
    frames: list[tuple[dict[str, int] | None, list[bool]]] = []  # (keys seen, [expecting a key]) per container
    line, last = 1, 0
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        line += text.count("\n", last, match.start())
        last = match.start()
        if token in "{[":
            frames.append(({} if token == "{" else None, [token == "{"]))
        elif token in "}]":
            frames.pop()
        elif token in ",:":
            if frames and frames[-1][0] is not None:
                frames[-1][1][0] = token == ","
        elif frames and frames[-1][0] is not None and frames[-1][1][0]:
            seen = frames[-1][0]
            key = _json_key(token)
            if key in seen:
                raise DuplicateKeyError(key, line, seen[key]) from None
            seen[key] = line


def _json_key(token: str) -> str:
    return json.loads(token) if "\\" in token else token[1:-1]


def _mark_json(text: str, data: Any) -> None:
    # Frames: [container, key-or-index, expecting-a-key]; lists count their items by commas.
    stack: list[list[Any]] = []
    line = 1
    last = 0
    pending: Any = data  # the value the next opening bracket belongs to
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        line += text.count("\n", last, match.start())
        last = match.start()
        if token == "{" or token == "[":
            container = pending
            if isinstance(container, MarkedDict):
                container.start = line
            stack.append([container, 0 if token == "[" else None, token == "{"])
            pending = _child(stack[-1])
        elif token == "}" or token == "]":
            frame = stack.pop()
            if isinstance(frame[0], MarkedDict):
                frame[0].end = line
            if stack:
                pending = None
        elif token == ",":
            frame = stack[-1]
            if isinstance(frame[1], int):
                frame[1] += 1
                pending = _child(frame)
            else:
                frame[2] = True
        elif token == ":":
            stack[-1][2] = False
            pending = _child(stack[-1])
        elif stack and stack[-1][2]:  # a key
            frame = stack[-1]
            key = _json_key(token)
            frame[1] = key
            if isinstance(frame[0], MarkedDict):
                frame[0].key_lines[key] = line


def _child(frame: list[Any]) -> Any:
    container, where, _ = frame
    try:
        return container[where]
    except (KeyError, IndexError, TypeError):
        return None
