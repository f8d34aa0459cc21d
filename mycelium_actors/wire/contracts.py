"""YAML contracts: load and validate them, generate attrs modules, compare versions.

A contract file holds `messages:`, each with an `id`, an optional `doc` and
`fields` (a type, or `{type, default, doc}`). Every problem is a
`ContractError` naming the file, the message and the field; nothing is
written unless every file is valid. The generated code only ever comes from
validated names and literals.
"""

from __future__ import annotations

import keyword
import re
import textwrap
from pathlib import Path
from typing import Any

import attrs
import yaml

from ..errors import ContractError
from .registry import MAX_WIRE_ID

SCALARS = ("int", "float", "str", "bool", "bytes")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_NO_DEFAULT = object()
_RESERVED = {*SCALARS, "list", "dict", "None", "ActorRef", "Any", "attrs", "message"}


@attrs.frozen
class FieldDef:
    name: str
    type: str  # normalised: "list[int]", "Deposit | None", "ActorRef"
    default: Any = _NO_DEFAULT
    doc: str = ""

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT


@attrs.frozen
class MessageDef:
    name: str
    id: int
    doc: str
    fields: tuple[FieldDef, ...]

    def refs(self) -> set[str]:
        """The other messages this one's fields name."""
        words = {w for f in self.fields for w in re.findall(r"[A-Za-z_]\w*", f.type)}
        return words - _RESERVED


@attrs.frozen
class ContractFile:
    path: Path
    messages: tuple[MessageDef, ...]


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping."""


def _unique_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [loader.construct_object(k) for k, _ in node.value]
    if dup := next((k for i, k in enumerate(keys) if k in keys[:i]), None):
        raise ContractError(f"{dup!r} is given twice (line {node.start_mark.line + 1})")
    return loader.construct_mapping(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def parse_type(text: str, where: str, known: set[str]) -> str:
    """The normalised form of type `text`; raises `ContractError` naming `where`."""
    text = text.strip()
    if text.endswith("| None"):
        return parse_type(text[: -len("| None")], where, known) + " | None"
    for outer, prefix in (("list", "list["), ("dict", "dict[str,")):
        if text.startswith(prefix) and text.endswith("]"):
            inner = parse_type(text[len(prefix) : -1], where, known)
            return f"{outer}[{'str, ' if outer == 'dict' else ''}{inner}]"
    if text.startswith("dict["):
        raise ContractError(f"{where}: dict keys must be str, in {text!r}")
    if text in SCALARS or text == "ActorRef":
        return text
    if _NAME.match(text) and text in known:
        return text
    if _NAME.match(text) and text not in _RESERVED:
        raise ContractError(
            f"{where}: unknown type {text!r} (no message of that name in this file)"
        )
    raise ContractError(f"{where}: unknown type {text!r}")


def _check_default(value: Any, tp: str, where: str) -> Any:
    if value is None and tp.endswith(" | None"):
        return None
    base = tp.removesuffix(" | None")
    fits = {
        "int": type(value) is int,
        "float": type(value) in (int, float),
        "str": type(value) is str,
        "bool": type(value) is bool,
        "bytes": type(value) is bytes,
    }.get(base)
    if fits:
        return float(value) if base == "float" else value
    if (base.startswith("list[") and value == []) or (base.startswith("dict[") and value == {}):
        return value
    raise ContractError(
        f"{where}: bad default {value!r} for {tp} (lists and dicts default to empty; "
        "messages and refs only to null when optional)"
    )


def _message(path: Path, name: Any, spec: Any, known: set[str]) -> MessageDef:
    if not isinstance(name, str) or not _NAME.match(name) or name in _RESERVED:
        raise ContractError(f"{path}: {name!r} is not a valid message name")
    if not isinstance(spec, dict) or set(spec) - {"id", "doc", "fields"}:
        raise ContractError(f"{path}: {name}: expected a map of id, doc and fields")
    wire = spec.get("id")
    if type(wire) is not int or not 0 < wire <= MAX_WIRE_ID:
        raise ContractError(f"{path}: {name}: id must be an int in 1..{MAX_WIRE_ID}, got {wire!r}")
    fields = spec.get("fields") or {}
    if not isinstance(fields, dict):
        raise ContractError(f"{path}: {name}: fields must be a map of name to type")
    out = []
    for fname, fspec in fields.items():
        where = f"{path}: {name}.{fname}"
        if not isinstance(fname, str) or not fname.isidentifier() or keyword.iskeyword(fname):
            raise ContractError(f"{path}: {name}: {fname!r} is not a valid field name")
        if fname.startswith("_"):
            raise ContractError(f"{where}: field names may not start with '_'")
        if isinstance(fspec, str):
            fspec = {"type": fspec}
        if (
            not isinstance(fspec, dict)
            or "type" not in fspec
            or set(fspec) - {"type", "default", "doc"}
        ):
            raise ContractError(f"{where}: expected a type, or a map of type, default and doc")
        if not isinstance(fspec["type"], str):
            raise ContractError(f"{where}: the type must be text, got {fspec['type']!r}")
        tp = parse_type(fspec["type"], where, known)
        default = _check_default(fspec["default"], tp, where) if "default" in fspec else _NO_DEFAULT
        out.append(FieldDef(fname, tp, default, str(fspec.get("doc") or "")))
    return MessageDef(name, wire, str(spec.get("doc") or ""), tuple(out))


def load(path: Path, unique_ids: bool = True) -> ContractFile:
    """Read and validate one contract file (ids are checked within it, unless
    `unique_ids` is False: `check` reports a reused id as a breaking change)."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ContractError(f"{path}: invalid YAML{at}: {getattr(exc, 'problem', exc)}") from exc
    except ContractError as exc:
        raise ContractError(f"{path}: {exc}") from exc
    except OSError as exc:
        raise ContractError(f"{path}: cannot read ({exc.strerror})") from exc
    if (
        not isinstance(data, dict)
        or set(data) != {"messages"}
        or not isinstance(data["messages"], dict)
    ):
        raise ContractError(f"{path}: expected one top-level key, `messages:`, holding a map")
    known = set(data["messages"])
    messages = [_message(path, n, s, known) for n, s in data["messages"].items()]
    seen: dict[int, str] = {}
    for m in messages if unique_ids else ():
        if m.id in seen:
            raise ContractError(f"{path}: {m.name}: id {m.id} is already used by {seen[m.id]}")
        seen[m.id] = m.name
    return ContractFile(path, _ordered(path, messages))


def _ordered(path: Path, messages: list[MessageDef]) -> tuple[MessageDef, ...]:
    """Referenced messages first (a class must exist before one that uses it), else YAML order."""
    by_name = {m.name: m for m in messages}
    done: dict[str, MessageDef] = {}

    def visit(m: MessageDef, stack: tuple[str, ...]) -> None:
        if m.name in done:
            return
        if m.name in stack:
            cycle = " -> ".join((*stack[stack.index(m.name) :], m.name))
            raise ContractError(
                f"{path}: {m.name}: contains itself ({cycle}); nesting must be bounded"
            )
        for ref in sorted(m.refs()):
            visit(by_name[ref], (*stack, m.name))
        done[m.name] = m

    for m in messages:
        visit(m, ())
    return tuple(done.values())


def sources(src: Path) -> list[Path]:
    """The contract files named by `src`: itself, or the *.yaml/*.yml files in it."""
    if src.is_dir():
        return sorted(p for p in src.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [src]


def load_all(src: Path) -> list[ContractFile]:
    """Every contract file under `src`, validated; ids are unique across all of them."""
    files = [load(p) for p in sources(src)]
    seen: dict[int, str] = {}
    for f in files:
        for m in f.messages:
            if m.id in seen:
                raise ContractError(
                    f"{f.path}: {m.name}: id {m.id} is already used by {seen[m.id]}"
                )
            seen[m.id] = f"{m.name} in {f.path.name}"
        if not f.path.stem.isidentifier() or keyword.iskeyword(f.path.stem):
            raise ContractError(f"{f.path}: the file name must be a Python module name")
    return files


# -- code generation ----------------------------------------------------------


def _literal(value: Any) -> str:
    if isinstance(value, str | bytes):
        text = repr(value)
        prefix = "b" if isinstance(value, bytes) else ""
        body = text[len(prefix) + 1 : -1]
        if text[len(prefix)] == "'" and '"' not in body:  # ruff format's double quotes
            return f'{prefix}"{body.replace(chr(92) + chr(39), chr(39))}"'
        return text
    return repr(value)


def _annotation(tp: str) -> str:
    return re.sub(r"\bActorRef\b", "ActorRef[Any]", tp)


def _docstring(text: str, indent: str) -> list[str]:
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').strip()
    lines = textwrap.wrap(text, 96 - len(indent), break_on_hyphens=False) or [""]
    if len(lines) == 1 and len(lines[0]) + len(indent) + 6 <= 100:
        return [f'{indent}"""{lines[0]}"""']
    return [f'{indent}"""{lines[0]}', *(f"{indent}{line}" for line in lines[1:]), f'{indent}"""']


def _field(f: FieldDef, kw_only: bool) -> list[str]:
    lines = [f"    #: {line}" for line in textwrap.wrap(f.doc, 90)]
    head = f"    {f.name}: {_annotation(f.type)}"
    if not f.has_default:
        return [*lines, head + (" = attrs.field(kw_only=True)" if kw_only else "")]
    if f.default == [] or f.default == {}:
        factory = "list" if f.default == [] else "dict"
        return [*lines, f"{head} = attrs.field(factory={factory})"]
    return [*lines, f"{head} = {_literal(f.default)}"]


def generate(contract: ContractFile) -> str:
    """The Python module for one contract file: same input, same bytes."""
    uses_ref = any("ActorRef" in f.type for m in contract.messages for f in m.fields)
    out = [
        f"# Generated by `mycelium-actors contracts build` from {contract.path.name}: do not edit.",
        f'"""Contract types from {contract.path.name} (edit the YAML, then rebuild)."""',
        "",
        "from __future__ import annotations",
        "",
        *(["from typing import Any", ""] if uses_ref else []),
        "import attrs",
        "",
        f"from mycelium_actors import {'ActorRef, ' if uses_ref else ''}message",
    ]
    for m in contract.messages:
        out += ["", "", f"@message(id={m.id})", "@attrs.frozen", f"class {m.name}:"]
        out += _docstring(m.doc or f"The {m.name} message (wire id {m.id}).", "    ")
        if m.fields:
            out.append("")
        defaulted = False
        for f in m.fields:
            out += _field(f, kw_only=defaulted and not f.has_default)
            defaulted = defaulted or f.has_default
    return "\n".join(out) + "\n"


def build(src: Path, out: Path | None = None, check: bool = False) -> list[tuple[Path, str]]:
    """Generate a module per contract file under `src` (beside it, or in `out`).

    Returns each target and what happened: "written", "unchanged", or with
    `check` (nothing written) "fresh", "stale" or "missing". Raises
    `ContractError` before writing anything if any file is invalid.
    """
    files = load_all(src)
    report = []
    for contract in files:
        target = (out or contract.path.parent) / f"{contract.path.stem}.py"
        text = generate(contract)
        old = target.read_text(encoding="utf-8") if target.is_file() else None
        if check:
            status = "missing" if old is None else "fresh" if old == text else "stale"
        elif old == text:
            status = "unchanged"
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            status = "written"
        report.append((target, status))
    return report


# -- compatibility ------------------------------------------------------------


def _catalogue(src: Path) -> tuple[dict[str, MessageDef], list[str]]:
    """Messages by name over every file under `src`, and ids used twice (a break)."""
    by_name: dict[str, MessageDef] = {}
    ids: dict[int, str] = {}
    twice = []
    for path in sources(src):
        for m in load(path, unique_ids=False).messages:
            by_name[m.name] = m
            if m.id in ids:
                twice.append(f"{m.name}: reused id {m.id} (also {ids[m.id]})")
            ids[m.id] = m.name
    return by_name, twice


def breaking_changes(old: Path, new: Path) -> list[str]:
    """One line per change from `old` to `new` that breaks a peer on the other version."""
    before, _ = _catalogue(old)
    after, problems = _catalogue(new)
    old_ids = {m.id: m.name for m in before.values()}
    for name, m in before.items():
        if name not in after:
            problems.append(f"{name}: removed message (id {m.id})")
    for name, m in after.items():
        if old_ids.get(m.id, name) != name:
            problems.append(f"{name}: reused id {m.id} (was {old_ids[m.id]})")
        if name not in before:
            continue
        was = before[name]
        if was.id != m.id:
            problems.append(f"{name}: id changed from {was.id} to {m.id}")
        fields = {f.name: f for f in m.fields}
        for f in was.fields:
            if f.name not in fields:
                problems.append(f"{name}.{f.name}: removed field")
            elif fields[f.name].type != f.type:
                problems.append(f"{name}.{f.name}: retyped from {f.type} to {fields[f.name].type}")
            elif f.has_default and not fields[f.name].has_default:
                problems.append(f"{name}.{f.name}: default removed")
        old_fields = {f.name for f in was.fields}
        for f in m.fields:
            if f.name not in old_fields and not f.has_default:
                problems.append(f"{name}.{f.name}: new field without a default")
    return problems
