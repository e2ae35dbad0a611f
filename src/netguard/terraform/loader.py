"""Read one Terraform module folder: every .tf file parsed once (python-hcl2), rendered once.

This is the only module that uses the HCL parser. Rendering here means: variables take their
defaults or the folder's terraform.tfvars / *.auto.tfvars, locals are evaluated on demand, override
files are merged as Terraform merges them, and count / for_each are expanded into instances up to
limits.max_instances. Nothing is guessed: what cannot be evaluated stays unknown, and a block whose
count or for_each is unknown stays one instance that stands for all of them.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netguard.config import ScanConfig
from netguard.errors import InputError
from netguard.safety import read_vetted
from netguard.terraform import expressions as expr
from netguard.terraform.module import Block, Call, Inputs, Module, ModuleBindings, unwrap


@dataclass
class LoadedModule:
    module: Module | None
    errors: list[InputError] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)  # files that could not be read or parsed
    notices: list[str] = field(default_factory=list)  # modules not followed, and why


def _parse(path: Path, config: ScanConfig) -> tuple[dict[str, Any] | None, str | None, list[str], int | None]:
    """A .tf or .tf.json file in the shape python-hcl2 gives, or why not (and on which line), and its lines."""
    raw, problem = read_vetted(path, config.limits)
    if problem:
        return None, problem, [], None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, f"not valid UTF-8 (byte {exc.start}, column {column})", [], line
    if path.name.endswith(".tf.json"):
        data, problem, lines = _parse_json_syntax(text)
        return data, problem, lines, None
    import hcl2
    from lark.exceptions import LarkError

    try:
        return hcl2.loads(text), None, text.split("\n"), None  # lines as HCL counts them (not str.splitlines)
    except (LarkError, ValueError, RecursionError) as exc:
        problem, line = hcl_syntax_error(exc, text)
        return None, problem, [], line


# --- HCL syntax errors in words ------------------------------------------------------------------
# python-hcl2 parses with lark, whose messages list the grammar's terminals (`Expected one of: *
# __ANON_0 * /<<(?P<heredoc>.../`). A user needs the line and what is wrong there, so each error is
# rebuilt from the exception's position and token, and never quotes the grammar.

_CLOSERS = {"}": "{", "]": "[", ")": "("}
_HEREDOC_OPENS = re.compile(r"<<-?([A-Za-z][A-Za-z0-9._-]*)[ \t]*\r?\n")


def hcl_syntax_error(exc: BaseException, text: str) -> tuple[str, int | None]:
    """A short reason for an HCL file python-hcl2 refused (`invalid HCL: unexpected '}'`), and its line
    (None when unknown)."""
    message, line = _hcl_reason(exc, text)
    return (message if message.startswith("cannot parse HCL") else f"invalid HCL: {message}"), line


def _hcl_reason(exc: BaseException, text: str) -> tuple[str, int | None]:
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken, VisitError

    lines = text.split("\n")
    if isinstance(exc, RecursionError):
        return "nested too deeply to parse", None
    if isinstance(exc, ValueError) and str(exc).startswith("Line has unclosed quote marks: "):
        written = str(exc).split(": ", 1)[1]  # hcl2's own check names the line's text, not its number
        line = next((i for i, text_line in enumerate(lines, 1) if written and text_line.startswith(written)), None)
        return "unclosed string: a '\"' has no closing quote on its line", line
    if isinstance(exc, UnexpectedToken):
        return _unexpected_token(exc, text, lines)
    if isinstance(exc, UnexpectedCharacters):
        return _unexpected_character(exc, lines), exc.line
    if isinstance(exc, UnexpectedEOF):
        return _end_of_file(text, len(lines))
    if isinstance(exc, VisitError):
        meta = getattr(getattr(exc, "obj", None), "meta", None)
        line = getattr(meta, "line", None)
        return (
            _near(lines, line, 1) if line else ("cannot parse HCL: the file holds an expression it cannot read", None)
        )
    line = getattr(exc, "line", None)
    return _near(lines, line if isinstance(line, int) and line > 0 else None, getattr(exc, "column", 1))


def _terminal_kinds(names: set[str]) -> set[str]:
    """What each expected terminal stands for: a punctuation mark as written, or a kind of thing."""
    from hcl2.parser import Hcl2

    patterns = {t.name: t.pattern for t in Hcl2.lark_parser.terminals}
    kinds = set()
    for name in names:
        pattern = patterns.get(name)
        if name == "$END":
            kinds.add("end")
        elif name == "_NEW_LINE_OR_COMMENT":
            kinds.add("newline")
        elif name in ("STRING_LIT", "DECIMAL"):
            kinds.add(name)
        elif pattern is not None and pattern.type == "str":
            kinds.add(pattern.value)
        elif pattern is not None and pattern.value.startswith("<<"):
            kinds.add("heredoc")
        elif pattern is not None and pattern.value.startswith("[a-zA-Z_]"):
            kinds.add("name")
    return kinds


def _shown(token: Any) -> str:
    """A token as a reader knows it: '}' or 'the end of the line', never the grammar's name for it."""
    from netguard.errors import printable

    if token.type == "$END":
        return "the end of the file"
    value = str(token)
    if token.type == "_NEW_LINE_OR_COMMENT":
        return "a comment" if value.strip().startswith(("#", "//")) else "the end of the line"
    return f"'{printable(value[:40])}'"


def _unexpected_token(exc: Any, text: str, lines: list[str]) -> tuple[str, int | None]:
    token, line, column = exc.token, exc.line, exc.column
    expected = _terminal_kinds(set(exc.expected or ()))
    position = getattr(exc, "pos_in_stream", None)
    rest = text[position:] if isinstance(position, int) and 0 <= position <= len(text) else ""
    previous = getattr(exc, "token_history", None) or []
    after = str(previous[-1]) if previous else ""
    where = f" at column {column}" if isinstance(column, int) and column > 0 else ""
    if token.type == "$END":
        return _end_of_file(text, line)
    if rest.startswith("<<"):
        marker = _HEREDOC_OPENS.match(rest)
        if not marker:
            return "a heredoc needs a name right after << and then a line break (<<EOF)", line
        name = marker.group(1)
        return f"unclosed heredoc: no line holding only {name} closes the <<{name} opened here", line
    if rest.startswith("/*"):
        return "unclosed comment: '/*' without '*/'", line
    if expected and expected <= {"{", "STRING_LIT", "name"}:  # a block header: labels, then '{'
        if token.type == "_NEW_LINE_OR_COMMENT":
            head = lines[line - 1].strip() if 0 < line <= len(lines) else ""
            return (
                f"expected an attribute or block: `{_cut(head)}` needs '=' (an attribute) or '{{' (a block)",
                line,
            )
        return f"invalid block label {_shown(token)}{where}: labels are quoted strings or names", line
    if token.type in ("RBRACE", "RSQB", "RPAR"):
        opener = _open_brackets(text, position if isinstance(position, int) else len(text))
        wanted = {v: k for k, v in _CLOSERS.items()}.get(opener[-1][0]) if opener else None
        if wanted in (")", "]") and wanted != str(token) and wanted in expected:  # a '{' may always close
            mark, opened = opener[-1]
            return f"unexpected {_shown(token)}{where}: the '{mark}' opened at line {opened} is not closed", line
        if not opener:
            return f"unexpected {_shown(token)}{where}: nothing is open here to close", line
        if not {"STRING_LIT", "DECIMAL", "name"} <= expected:
            return f"unexpected {_shown(token)}{where}", line
    if expected and expected <= {"name", "newline", "}", "end"}:  # inside a body: an attribute or a block
        return f"expected an attribute or block{where}, found {_shown(token)}", line
    if {"STRING_LIT", "DECIMAL", "name"} <= expected:  # a value is missing
        before = f" after '{after}'" if after[:1] and not after[:1].isalnum() and after[:1] not in '"\n#/' else ""
        return f"expected a value{before}{where}, found {_shown(token)}", line
    if expected and expected <= {"=", "{", "newline"}:
        return f"expected '=' or '{{'{where}, found {_shown(token)}", line
    return f"unexpected {_shown(token)}{where}", line


def _unexpected_character(exc: Any, lines: list[str]) -> str:
    from netguard.errors import printable

    line, column = exc.line, exc.column
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    rest = source[column - 1 :] if column else ""
    where = f" at column {column}" if column else ""
    if rest.startswith('"'):
        if "${" in rest or "%{" in rest:
            return f"unclosed string or template{where}: a '${{' or '%{{' in it has no matching '}}'"
        return f"unclosed string{where}: a '\"' has no closing quote"
    if rest.startswith("<<"):
        return f"a heredoc needs a name right after << and then a line break (<<EOF){where}"
    expected = _terminal_kinds(set(exc.allowed or ()))
    char = printable(exc.char or rest[:1])
    if expected and expected <= {"name", "newline", "}", "end"}:
        return f"expected an attribute or block{where}, found '{char}'"
    return f"unexpected character '{char}'{where}"


def _end_of_file(text: str, line: int | None) -> tuple[str, int | None]:
    """The file ends inside something: name the innermost bracket left open, on its own line."""
    opener = _open_brackets(text, len(text))
    if opener:
        mark, opened = opener[-1]
        closer = {v: k for k, v in _CLOSERS.items()}[mark]
        return f"'{mark}' is never closed: the file ends before its '{closer}'", opened
    return "unexpected end of the file", line


def _open_brackets(text: str, end: int) -> list[tuple[str, int]]:
    """The brackets still open at offset end, outermost first, with their lines: strings, comments
    and heredocs skipped as HCL reads them. Best effort, for messages only."""
    stack: list[tuple[str, int]] = []
    index, line = 0, 1
    while index < min(end, len(text)):
        char = text[index]
        if char == "\n":
            line += 1
        elif char == "#" or text.startswith("//", index):
            stop = text.find("\n", index)
            index = len(text) if stop < 0 else stop
            continue
        elif text.startswith("/*", index):
            stop = text.find("*/", index + 2)
            stop = len(text) if stop < 0 else stop + 2
            line += text.count("\n", index, stop)
            index = stop
            continue
        elif char == '"':
            stop = index + 1
            while stop < len(text) and text[stop] not in '"\n':
                stop += 2 if text[stop] == "\\" else 1
            index = stop + 1 if stop < len(text) and text[stop] == '"' else stop
            continue
        elif heredoc := _HEREDOC_OPENS.match(text, index):
            closing = re.compile(rf"^[ \t]*{re.escape(heredoc.group(1))}[ \t]*$", re.M).search(text, heredoc.end())
            stop = closing.end() if closing else len(text)
            line += text.count("\n", index, stop)
            index = stop
            continue
        elif char in "{[(":
            stack.append((char, line))
        elif char in _CLOSERS and stack and stack[-1][0] == _CLOSERS[char]:
            stack.pop()
        index += 1
    return stack


def _near(lines: list[str], line: int | None, column: int | None) -> tuple[str, int | None]:
    """The fallback: the text where parsing stopped."""
    if not line or not 0 < line <= len(lines):
        return "cannot parse HCL", None
    source = lines[line - 1]
    text = source[(column or 1) - 1 :].strip() or source.strip()
    return f"cannot parse HCL near line {line}: {_cut(text)}", line


def _cut(text: str) -> str:
    from netguard.errors import printable

    return printable(text[:40] + ("..." if len(text) > 40 else ""))


_BLOCK_KINDS = ("resource", "data")


def _parse_json_syntax(text: str) -> tuple[dict[str, Any] | None, str | None, list[str]]:
    """Terraform's JSON syntax (`.tf.json`, CDK for Terraform's output) in python-hcl2's shape:
    attribute values wrapped in one-element lists, blocks in lists, lines from the JSON keys."""
    from netguard.cfn.marked import DuplicateKeyError, load_json

    try:
        data = load_json(text)
    except (ValueError, DuplicateKeyError, RecursionError) as exc:
        return None, f"invalid JSON: {' '.join(str(exc).split())[:200]}", []
    if not isinstance(data, dict):
        return None, "a .tf.json file must hold a JSON object", []
    shaped: dict[str, Any] = {}
    for kind in _BLOCK_KINDS:
        for types in _objects(data.get(kind)):
            for type_name, named in types.items():
                for blocks in _objects(named):
                    for name, bodies in blocks.items():
                        for body in _objects(bodies):
                            shaped.setdefault(kind, []).append({type_name: {name: _block_body(blocks, name, body)}})
    for variables in _objects(data.get("variable")):
        for name, body in variables.items():
            if isinstance(body, dict):
                shaped.setdefault("variable", []).append({name: {k: [v] for k, v in body.items() if k != "//"}})
    for values in _objects(data.get("locals")):
        shaped.setdefault("locals", []).append({k: [v] for k, v in values.items() if k != "//"})
    for outputs in _objects(data.get("output")):
        for name, body in outputs.items():
            if isinstance(body, dict) and "value" in body:
                shaped.setdefault("output", []).append({name: {"value": [body["value"]]}})
    for modules in _objects(data.get("module")):
        for name, body in modules.items():
            if isinstance(body, dict):
                shaped.setdefault("module", []).append({name: _block_body(modules, name, body)})
    return shaped, None, text.split("\n")


def _objects(value: Any) -> list[dict[str, Any]]:
    """A JSON-syntax block position holds an object or a list of objects."""
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, dict)]


def _block_body(parent: Any, name: str, body: dict[str, Any]) -> dict[str, Any]:
    from netguard.cfn.marked import MarkedDict

    shaped: dict[str, Any] = {k: [v] for k, v in body.items() if k != "//"}  # "//" is a comment
    start = parent.line_of(name) if isinstance(parent, MarkedDict) else 0
    shaped["__start_line__"] = start
    shaped["__end_line__"] = body.end if isinstance(body, MarkedDict) and body.end else start
    return shaped


def _parse_tfvars(path: Path, config: ScanConfig) -> tuple[dict[str, Any] | None, str | None, int | None]:
    if path.suffix != ".json":
        data, problem, _, line = _parse(path, config)
        return data, problem, line
    raw, problem = read_vetted(path, config.limits)
    if problem:
        return None, problem, None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        return None, f"invalid JSON: {' '.join(str(exc).split())[:200]}", getattr(exc, "lineno", None)
    if not isinstance(data, dict):
        return None, "a variables file must hold a JSON object", None
    return {name: [value] for name, value in data.items()}, None, None  # the shape hcl2 gives (wrapped values)


def _is_override(path: Path) -> bool:
    stem = path.name.removesuffix(".json").removesuffix(".tf")
    return stem == "override" or stem.endswith("_override")


@dataclass
class _Declared:
    """A resource or data block as written, before expansion."""

    kind: str
    type: str
    name: str
    body: dict[str, Any]
    file: str
    lines: list[str]  # the file's source lines: count/for_each are read from the source text
    origin: dict[str, _Declared] = field(default_factory=dict)  # attribute -> the override that set it


def _variables(declared: dict[str, dict[str, Any]], tfvars: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, body in declared.items():
        if name in tfvars:
            values[name] = tfvars[name]
        elif "default" in body:
            values[name] = expr.evaluate(unwrap(body["default"]), expr.Bindings())
        else:
            values[name] = expr.UNKNOWN
    return values


def _tfvars(folder: Path, config: ScanConfig, errors: list[InputError]) -> dict[str, Any]:
    """terraform.tfvars(.json), then *.auto.tfvars(.json) in name order, as Terraform reads them."""
    values: dict[str, Any] = {}
    auto = sorted([*folder.glob("*.auto.tfvars"), *folder.glob("*.auto.tfvars.json")], key=lambda p: p.name)
    files = [folder / "terraform.tfvars", folder / "terraform.tfvars.json", *auto]
    for path in files:
        if not path.is_file():
            continue
        data, problem, line = _parse_tfvars(path, config)
        if problem:
            errors.append(InputError(str(path), problem, line))
            continue
        for name, raw in (data or {}).items():
            values[name] = expr.evaluate(unwrap(raw), expr.Bindings())
    return values


@dataclass
class _Folder:
    """What one module folder declares, after override files are merged."""

    blocks: list[_Declared] = field(default_factory=list)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals_raw: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    calls: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)  # name -> (body, file)


MAX_MODULE_DEPTH = 10  # module calls within module calls; deeper is reported, not followed
_META = {"source", "version", "count", "for_each", "providers", "depends_on"}


def load_module(files: list[Path], config: ScanConfig) -> LoadedModule:
    """Parse and render the .tf files of one folder, and the local modules it calls, into block
    instances of one Module (a called module's blocks are named `module.NAME.<address>`)."""
    out = LoadedModule(None)
    folder = Path(files[0]).parent if files else Path(".")
    declared = _read_folder(files, config, out, record_failures=True)
    values = _variables(declared.variables, _tfvars(folder, config, out.errors))
    module = Module(variables=values, locals_raw=declared.locals_raw)
    _render(declared, folder, module, values, "", None, config, out, depth=0, active={folder.resolve()}, root=folder)
    module.complete = True
    out.module = module
    return out


def _read_folder(files: list[Path], config: ScanConfig, out: LoadedModule, record_failures: bool) -> _Folder:
    found = _Folder()
    declared: dict[tuple[str, str, str], _Declared] = {}
    overrides: list[_Declared] = []
    for path in sorted(files, key=_is_override):  # override files merge last
        data, problem, lines, line = _parse(path, config)
        if problem:
            out.errors.append(InputError(str(path), problem, line))
            if record_failures:
                out.failed.add(str(path))
            continue
        for block in data.get("variable", []):
            for name, body in block.items():
                found.variables[name] = body if isinstance(body, dict) else {}
        for block in data.get("locals", []):
            found.locals_raw.update({k: unwrap(v) for k, v in block.items() if not k.startswith("__")})
        for block in data.get("output", []):
            for name, body in block.items():
                if isinstance(body, dict) and "value" in body:
                    found.outputs[name] = unwrap(body["value"])
        for block in data.get("module", []):
            for name, body in block.items():
                if isinstance(body, dict):
                    found.calls[name] = (body, str(path))
        for kind in ("resource", "data"):
            for block in data.get(kind, []):
                for type_name, named in block.items():
                    for name, body in (named or {}).items():
                        if not isinstance(body, dict):
                            continue
                        entry = _Declared(kind, type_name, name, body, str(path), lines)
                        key = (kind, type_name, name)
                        if _is_override(path):
                            overrides.append(entry)
                        elif key in declared:
                            # Terraform refuses the module; both blocks are still checked, never one dropped.
                            first = declared[key]
                            out.errors.append(
                                InputError(
                                    entry.file,
                                    f"{'data.' if kind == 'data' else ''}{type_name}.{name} is declared twice"
                                    f" (also in {first.file}, line {first.body.get('__start_line__', '?')});"
                                    " Terraform refuses duplicate blocks",
                                    int(body.get("__start_line__", 0) or 0) or None,
                                )
                            )
                            found.blocks.append(entry)
                        else:
                            declared[key] = entry
    for entry in overrides:
        base = declared.get((entry.kind, entry.type, entry.name))
        if base is None:
            out.errors.append(
                InputError(entry.file, f"override for {entry.type}.{entry.name}, which no other file declares")
            )
            continue
        # Terraform merges override attributes and nested blocks into the original, key by key.
        overridden = {k: v for k, v in entry.body.items() if not k.startswith("__")}
        base.body = {**base.body, **overridden}
        base.origin.update({k: entry for k in overridden})
    found.blocks[:0] = declared.values()
    return found


def _render(
    declared: _Folder,
    folder: Path,
    module: Module,
    variables: Any,
    prefix: str,
    inputs: Inputs | None,
    config: ScanConfig,
    out: LoadedModule,
    depth: int,
    active: set[Path],
    existence: str | None = None,
    root: Path | None = None,
    call_site: str | None = None,
    read: dict[Path, _Folder] | None = None,
) -> tuple[ModuleBindings, ModuleBindings]:
    """Add one module instance's blocks (and, recursively, its local module calls) to the Module."""
    read = {} if read is None else read
    calls: dict[str, Call] = {}
    # One module instance, seen twice: with values, and with resources as reference tokens.
    frame = {
        "local_values": declared.locals_raw,
        "module": module,
        "module_path": prefix,
        "calls": calls,
        "path_module": str(folder.resolve()),
        "path_root": str((root or folder).resolve()),
    }
    scope = ModuleBindings(variables=variables, inputs=inputs, call_site=call_site, **frame)
    ref_variables = Inputs(inputs.raws, inputs.ref_caller, inputs.defaults) if inputs else variables
    ref_scope = ModuleBindings(variables=ref_variables, tokens=True, **frame)
    for entry in declared.blocks:
        for block in _instances(entry, scope, ref_scope, config, out.errors):
            if existence and block.existence is None:
                block.existence = f"module call: {existence}"  # the call is conditional, in the caller's terms
            module.add(block)
    for name, (body, file) in declared.calls.items():
        child_folder = _module_folder(folder, root or folder, name, body, prefix, out, file, config)
        if child_folder is None:
            continue
        line = int(body.get("__start_line__", 0) or 0) or None
        if depth + 1 > MAX_MODULE_DEPTH or child_folder.resolve() in active:
            out.notices.append(
                f"{file}: module.{name}: not followed (nested more than {MAX_MODULE_DEPTH} deep or a cycle)"
            )
            continue
        child = read.get(child_folder)
        if child is None:  # a module called many times is read and parsed once
            child_files = sorted([*child_folder.glob("*.tf"), *child_folder.glob("*.tf.json")])
            child = read[child_folder] = _read_folder(child_files, config, out, record_failures=False)
        defaults = _variables(child.variables, {})
        raws = {k: unwrap(v) for k, v in body.items() if k not in _META and not k.startswith("__")}
        unknown = sorted(set(raws) - set(child.variables))
        if unknown:
            out.errors.append(
                InputError(file, f"module.{name}: no variable {', '.join(unknown)} in {child_folder}", line)
            )
        child_inputs = Inputs(raws, scope, defaults, ref_caller=ref_scope)
        condition = existence
        for meta in ("count", "for_each"):
            if meta in body:
                condition = _existence(unwrap(body[meta])) or meta
        child_scope, child_ref_scope = _render(
            child,
            child_folder,
            module,
            child_inputs,
            f"{prefix}module.{name}.",
            child_inputs,
            config,
            out,
            depth + 1,
            {*active, child_folder.resolve()},
            condition,
            root,
            call_site or f"{file}:{line or 0}",
            read,
        )
        calls[name] = Call(child_scope, child_ref_scope, child.outputs)
    return scope, ref_scope


def _module_folder(
    folder: Path,
    root: Path,
    name: str,
    body: dict[str, Any],
    prefix: str,
    out: LoadedModule,
    file: str,
    config: ScanConfig,
) -> Path | None:
    """Where a called module's files are: a local path, or where `terraform init` installed it."""
    source = unwrap(body.get("source"))
    line = int(body.get("__start_line__", 0) or 0) or None
    if isinstance(source, str) and source.startswith(("./", "../")):
        path = (folder / source).resolve()
        if path.is_dir():
            return path
        out.errors.append(InputError(file, f"module.{name}: source {source} is not a folder", line))
        return None
    installed = _installed_modules(root).get(f"{prefix}module.{name}".replace("module.", "").strip("."))
    if installed is not None and installed.is_dir():
        return installed
    message = (
        f"module.{name} ({source}) is not evaluated: not a local path, and not installed by"
        " `terraform init` here (.terraform/modules/modules.json)"
    )
    if config.unresolved_modules == "error":
        out.errors.append(InputError(file, message + " (unresolved_modules: error)", line))
    else:
        out.notices.append(f"{file}: {message}")
    return None


def _installed_modules(folder: Path) -> dict[str, Path]:
    """modules.json of `terraform init`: module key (`vpc`, `vpc.flow_log`) -> its folder."""
    manifest = folder / ".terraform" / "modules" / "modules.json"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found = {}
    for entry in data.get("Modules", []) if isinstance(data, dict) else []:
        if isinstance(entry, dict) and isinstance(entry.get("Key"), str) and isinstance(entry.get("Dir"), str):
            found[entry["Key"]] = (folder / entry["Dir"]).resolve()
    return found


def _existence(raw: Any) -> str | None:
    """The source text of a count/for_each that is not a plain number."""
    if raw is None or (isinstance(raw, int) and not isinstance(raw, bool)):
        return None
    text = raw if isinstance(raw, str) else repr(raw)
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    text = " ".join(text.split())
    return None if text.isdigit() else text


def _instances(
    entry: _Declared, scope: ModuleBindings, ref_scope: ModuleBindings, config: ScanConfig, errors: list[InputError]
) -> list[Block]:
    body = entry.body
    line = int(body.get("__start_line__", 0) or 0)
    end = int(body.get("__end_line__", line) or line)

    def make(key: Any = None, value: Any = expr.UNKNOWN, kind: str = "", **extra: Any) -> Block:
        if kind == "count":
            bound = {"count_index": key}
        elif kind == "for_each":
            bound = {"each_key": key, "each_value": value}
        else:
            bound = {}
        return Block(
            entry.kind,
            entry.type,
            entry.name,
            key,
            body,
            entry.file,
            line,
            end,
            scope.for_instance(**bound),
            ref_scope.for_instance(**bound),
            **extra,
        )

    limit = config.limits.max_instances
    if "count" in body:
        raw = _source(entry, "count") or unwrap(body["count"])
        existence = _existence(raw)
        make = functools.partial(make, count_raw=raw, count_kind="count")
        count = expr.evaluate(raw, scope)
        if isinstance(count, bool) or not isinstance(count, (int, float)) or count != int(count):
            return [make(existence=existence or "count", most=_upper_bound(raw, scope))]
        count = int(count)
        if count > limit:
            errors.append(_over_limit(entry, f"count is {count}", limit))
            return [make(existence=existence or "count")]
        if count <= 0:
            # count 0 under the defaults: the block may still exist with other inputs, so it is kept.
            return [make(existence=existence)] if existence else []
        return [make(i, kind="count", existence=existence) for i in range(count)]
    if "for_each" in body:
        raw = _source(entry, "for_each") or unwrap(body["for_each"])
        existence = _existence(raw) or "for_each"
        make = functools.partial(make, count_raw=raw, count_kind="for_each")
        source = _whole_resource(raw)
        collection = expr.evaluate(raw, scope)
        if isinstance(collection, Mapping):
            items = list(collection.items())
        elif isinstance(collection, list) and all(isinstance(v, str) for v in collection):
            items = [(v, v) for v in collection]
        else:
            return [make(existence=existence, each_source=source)]
        if not items and expr.references(raw):
            # empty under the defaults, but an input away from instances: kept, like count = 0
            return [make(existence=existence, each_source=source)]
        if len(items) > limit:
            errors.append(_over_limit(entry, f"for_each has {len(items)} keys", limit))
            return [make(existence=existence, each_source=source)]
        return [make(k, v, "for_each", existence=existence, each_source=source) for k, v in items]
    return [make()]


_HEREDOC = re.compile(r"<<-?\s*([A-Za-z_][A-Za-z0-9_]*)\s*$")


def _code_lines(lines: list[str]) -> list[tuple[str, str]]:
    """Each line as (code, skeleton): code without comments (`#`, `//`, `/* */`) and heredoc bodies;
    the skeleton also without string contents, so brackets or `count =` inside a string never count."""
    out: list[tuple[str, str]] = []
    in_comment = False
    heredoc: str | None = None
    for line in lines:
        if heredoc is not None:
            out.append(("", ""))
            if line.strip() == heredoc:
                heredoc = None
            continue
        code: list[str] = []
        skeleton: list[str] = []
        index, quote = 0, False
        while index < len(line):
            char, pair = line[index], line[index : index + 2]
            if in_comment:
                if pair == "*/":
                    in_comment = False
                    index += 2
                    continue
            elif quote:
                code.append(char)
                if char == "\\" and index + 1 < len(line):
                    code.append(line[index + 1])
                    index += 1
                elif char == '"':
                    quote = False
                    skeleton.append('"')
            elif pair == "/*":
                in_comment = True
                index += 2
                continue
            elif char == "#" or pair == "//":
                break
            else:
                quote = char == '"'
                code.append(char)
                skeleton.append(char)
            index += 1
        marker = _HEREDOC.search("".join(skeleton))
        if marker:
            heredoc = marker.group(1)
        out.append(("".join(code), "".join(skeleton)))
    return out


def _depth(skeleton: str) -> int:
    return sum(skeleton.count(c) for c in "{[(") - sum(skeleton.count(c) for c in "}])")


def _source(entry: _Declared, name: str) -> str | None:
    """`${<source text>}` of a top-level attribute of the block, from the file that set it.

    python-hcl2 drops parentheses when it renders an expression back to text, so
    `(a || b) && c` would come back as `a || b && c`; count and for_each are read from the source,
    with comments left out. An override file that sets the attribute is read instead of the original.
    """
    origin = entry.origin.get(name, entry)
    body = origin.body
    first = int(body.get("__start_line__", 0) or 0)
    last = int(body.get("__end_line__", 0) or 0)
    if not first or not last or last > len(origin.lines):
        return None
    lines = _code_lines(origin.lines[first : last - 1])  # the body, between header and closing brace
    pattern = re.compile(rf"^\s*{re.escape(name)}\s*=")
    depth = 0
    for index, (code, skeleton) in enumerate(lines):
        if depth == 0 and pattern.match(skeleton):
            parts = [code.split("=", 1)[1]]
            open_brackets = _depth(skeleton.split("=", 1)[1])
            for more_code, more_skeleton in lines[index + 1 :]:
                if open_brackets <= 0:
                    break
                parts.append(more_code)
                open_brackets += _depth(more_skeleton)
            text = " ".join(part.strip() for part in parts).strip()
            return "${" + text + "}" if text else None
        depth += _depth(skeleton)
    return None


def _upper_bound(raw: Any, scope: ModuleBindings) -> int | None:
    """The most instances an unknown `count` can make, when it is a conditional of known numbers
    (`var.on ? 1 : 0`): then `x[0]` names every instance there can be."""
    if not isinstance(raw, str) or not raw.startswith("${") or not raw.endswith("}"):
        return None
    text = raw[2:-1]
    question = -1
    for index, char in expr.top_level(text):
        if char == "?" and question < 0:
            question = index
        elif char == ":" and question >= 0:
            branches = [
                expr.evaluate("${" + part + "}", scope) for part in (text[question + 1 : index], text[index + 1 :])
            ]
            if all(isinstance(b, int) and not isinstance(b, bool) for b in branches):
                return max(branches)
            return None
    return None


def _whole_resource(raw: Any) -> str | None:
    """`for_each = aws_vpc.main`: the base address iterated over, so each.value is its instance."""
    refs = expr.references(raw)
    text = _existence(raw) or ""
    if len(refs) != 1:
        return None
    ref = refs[0]
    parts = [p for p in ref.parts if isinstance(p, str)]
    if ref.root == "data" and len(parts) == 2 and text == f"data.{parts[0]}.{parts[1]}":
        return text
    if ref.root.startswith("aws_") and len(parts) == 1 and text == f"{ref.root}.{parts[0]}":
        return text
    return None


def _over_limit(entry: _Declared, what: str, limit: int) -> InputError:
    return InputError(
        entry.file,
        f"{entry.type}.{entry.name}: {what}, over limits.max_instances ({limit}); it is checked as one"
        " instance standing for all, and the run fails until the limit is raised",
        int(entry.body.get("__start_line__", 0) or 0) or None,
    )
