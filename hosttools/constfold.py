"""The firmware's public constants folded into the code that reads them, for a deploy.

On MicroPython ``NAME = const(7)`` is folded wherever the module itself reads ``NAME``, but a
public name (no leading underscore) is also kept as a module global: an interned name and a
slot of the module's dict, and every other module reads it as ``module.NAME``, two lookups at
run time. On a board without a romfs all of that is heap; an agent's modules define about a
hundred such constants (IF_RADIO, FA_POORLY_FORMED, SPI_CELL, ...), some 3 KB of its heap at
32 bits (docs/FIRMWARE.md "Constants"). The source keeps them public because the other
modules, the tests and the host's tools read them by name.

A set of files is folded together (the firmware, and the tests that run against it on a board):

* every module-level ``NAME = const(<int expression>)`` of a public name becomes ``_NAME``, and
  so does each read of ``NAME`` in its module (MicroPython then folds it and keeps no global);
* every read of it from elsewhere, ``module.NAME`` through an import of the module or ``NAME``
  through ``from module import NAME``, becomes the number (and leaves the ``from`` import).

Only what can be proven is folded. A name stays as it is when it is assigned anywhere in its
module besides its definition, when a string in the set spells it (a ``getattr``), when some
attribute of that name is read from something that is not a known module (a module passed
around, or an object with an attribute of the same name), or when it is written through its
module. Edits stay within their lines, so line numbers do not move (a test's failure still
points at its line).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

__all__ = ["fold", "module_name"]


def module_name(rel: str) -> str:
    """The dotted module name of the file ``rel`` (``mobility/agent.py``: ``mobility.agent``;
    a package's ``__init__.py``: the package)."""
    name = rel[:-3] if rel.endswith(".py") else rel
    if name.endswith("/__init__"):
        name = name[: -len("/__init__")]
    return name.replace("/", ".")


@dataclass
class _File:
    rel: str
    text: str
    tree: ast.Module
    module: str | None  # the module it defines (firmware), None for a user only (a test)
    aliases: dict[str, str] = field(default_factory=dict)  # local name -> module it names
    imported: dict[str, tuple[str, str]] = field(default_factory=dict)  # local -> (module, NAME)
    stored: set[str] = field(default_factory=set)  # names bound other than by an import
    bound: dict[str, int] = field(default_factory=dict)  # name -> bindings of it, imports too


def _bindings(f: _File, modules: set[str]) -> None:
    """The names a file binds to modules of the set (wherever the import is: lazy imports
    inside functions count), the names it imports from them, every other name it binds, and
    how many times it binds each name."""
    imports: dict[str, set[str]] = {}
    for node in ast.walk(f.tree):
        names: list[str] = []  # bound here other than by an import
        if isinstance(node, ast.Import):
            for a in node.names:
                local = a.asname or a.name.split(".")[0]
                imports.setdefault(local, set()).add(a.name if a.asname else local)
                f.bound[local] = f.bound.get(local, 0) + 1
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                local = a.asname or a.name
                sub = node.module + "." + a.name
                if sub in modules:
                    imports.setdefault(local, set()).add(sub)
                else:
                    imports.setdefault(local, set()).add("%s:%s" % (node.module, a.name))
                f.bound[local] = f.bound.get(local, 0) + 1
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names = [node.id]
        elif isinstance(node, ast.arg):
            names = [node.arg]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names = list(node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names = [node.name]
        for name in names:
            f.stored.add(name)
            f.bound[name] = f.bound.get(name, 0) + 1
    for local, what in imports.items():
        if len(what) != 1 or local in f.stored:
            f.stored.add(local)  # bound to two things: nothing is resolved through it
            continue
        (w,) = what
        if ":" in w:
            mod, name = w.split(":")
            f.imported[local] = (mod, name)
        else:
            f.aliases[local] = w


def _module_of(node: ast.expr, f: _File, modules: set[str]) -> str | None:
    """The module of the set ``node`` names in ``f`` (``ipv4``, ``mobility.ipv4``), else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in f.aliases:
        return None
    name = ".".join([f.aliases[node.id]] + parts[::-1])
    return name if name in modules else None


def _definitions(f: _File) -> dict[str, ast.expr]:
    """The module-level ``NAME = const(expr)`` of ``f`` (private ones too: they may be read
    by a public one's expression)."""
    out = {}
    for node in f.tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "const"
            and len(node.value.args) == 1
        ):
            out[node.targets[0].id] = node.value.args[0]
    return out


_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.LShift: lambda a, b: a << b,
    ast.RShift: lambda a, b: a >> b,
    ast.BitOr: lambda a, b: a | b,
    ast.BitAnd: lambda a, b: a & b,
    ast.BitXor: lambda a, b: a ^ b,
}


class _Unknown(Exception):
    pass


def _value(e: ast.expr, f: _File, values: dict[str, dict[str, int]], modules: set[str]) -> int:
    """An integer expression of literals and constants known so far."""
    if isinstance(e, ast.Constant) and type(e.value) is int:
        return e.value
    if isinstance(e, ast.Name) and f.module and e.id in values.get(f.module, {}):
        return values[f.module][e.id]
    if isinstance(e, ast.Name) and e.id in f.imported:
        mod, name = f.imported[e.id]
        if name in values.get(mod, {}):
            return values[mod][name]
    if isinstance(e, ast.Attribute):
        of = _module_of(e.value, f, modules)
        if of is not None and e.attr in values.get(of, {}):
            return values[of][e.attr]
    if isinstance(e, ast.BinOp) and type(e.op) in _BINARY:
        a, b = _value(e.left, f, values, modules), _value(e.right, f, values, modules)
        return int(_BINARY[type(e.op)](a, b))
    if isinstance(e, ast.UnaryOp) and isinstance(e.op, (ast.USub, ast.Invert)):
        v = _value(e.operand, f, values, modules)
        return -v if isinstance(e.op, ast.USub) else ~v
    raise _Unknown


def _constants(files: list[_File], modules: set[str]) -> dict[str, dict[str, int]]:
    """module -> {NAME: value} of every const() whose value is known (to a fixpoint: one
    module's constant may be built of another's)."""
    values: dict[str, dict[str, int]] = {}
    pending = [(f, name, e) for f in files if f.module for name, e in _definitions(f).items()]
    while pending:
        left = []
        for f, name, e in pending:
            try:
                values.setdefault(str(f.module), {})[name] = _value(e, f, values, modules)
            except _Unknown:
                left.append((f, name, e))
        if len(left) == len(pending):
            break  # the rest are not integer expressions of known constants
        pending = left
    return values


def _foldable(files: list[_File], values: dict[str, dict[str, int]], modules: set[str]) -> dict:
    """module -> {NAME: value} of the public constants that can be folded everywhere."""
    public = {m: {n: v for n, v in d.items() if not n.startswith("_")} for m, d in values.items()}
    names = {n for d in public.values() for n in d}
    refused: set[str] = set()
    for f in files:
        if f.module in public:
            # bound more than by its definition (a parameter, a function, an import, an
            # assignment of that name: a read of it there is not the constant's), or its
            # private name taken
            own = public[str(f.module)]
            refused.update(n for n in own if f.bound.get(n, 0) > 1 or "_" + n in f.stored)
        for node in ast.walk(f.tree):
            if isinstance(node, ast.Constant) and node.value in names:
                refused.add(str(node.value))  # a getattr() or the like may read it by name
            elif isinstance(node, ast.Attribute) and node.attr in names:
                mod = _module_of(node.value, f, modules)
                if mod is None or not isinstance(node.ctx, ast.Load):
                    refused.add(node.attr)
                elif node.attr not in public.get(mod, {}):
                    refused.add(node.attr)
            elif isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
                refused.update(public.get(str(node.module), {}))
    return {m: {n: v for n, v in d.items() if n not in refused} for m, d in public.items()}


def _literal(v: int) -> str:
    return str(v) if v >= 0 else "(%d)" % v


def _from_import(node: ast.ImportFrom, keep: list[ast.alias]) -> str:
    if not keep:
        return "pass"
    names = ", ".join(a.name + (" as " + a.asname if a.asname else "") for a in keep)
    return "from %s import %s" % (node.module, names)


def _edits(f: _File, fold: dict[str, dict[str, int]], modules: set[str]) -> list:
    """(line, col, end line, end col, text) for each edit of ``f`` (columns in UTF-8 bytes,
    as ast gives them)."""
    own = fold.get(f.module or "", {})
    imported = {
        local: fold[m][n]
        for local, (m, n) in f.imported.items()
        if n in fold.get(m, {}) and local not in f.stored
    }
    out = []
    for node in ast.walk(f.tree):
        if not isinstance(node, (ast.expr, ast.stmt)):
            continue
        span = (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            mod = _module_of(node.value, f, modules)
            if mod is not None and node.attr in fold.get(mod, {}):
                out.append(span + (_literal(fold[mod][node.attr]),))
        elif isinstance(node, ast.Name) and node.id in own:
            out.append(span + ("_" + node.id,))
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in imported:
            out.append(span + (_literal(imported[node.id]),))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in fold:
            keep = [a for a in node.names if (a.asname or a.name) not in imported]
            if len(keep) < len(node.names):
                out.append(span + (_from_import(node, keep),))
    return out


def _apply(text: str, edits: list) -> str:
    # (bytes split only at line ends, as ast counts lines; str.splitlines also splits at a
    # form feed and the like)
    lines = text.encode().splitlines(keepends=True)
    # from the end, so that an edit's columns are not moved by one made before it; an edit
    # inside another's span (a name inside a folded attribute) is left out
    edits = sorted(edits, key=lambda e: (e[0], e[1], -e[2], -e[3]))
    kept: list = []
    for e in edits:
        if kept and (e[0], e[1]) < (kept[-1][2], kept[-1][3]):
            continue
        kept.append(e)
    for line, col, end_line, end_col, new in reversed(kept):
        head, tail = lines[line - 1][:col], lines[end_line - 1][end_col:]
        blank = b"\n" * (end_line - line)  # a statement over several lines keeps them
        lines[line - 1 : end_line] = [head + new.encode() + blank + tail]
    return b"".join(lines).decode()


def _check_user(f: _File, node: ast.AST, fold: dict[str, dict[str, int]], modules: set[str]):
    """A ValueError when ``node`` of a user (a test) writes a constant the firmware's fold
    takes away, or reads it by its name as a string (``getattr(auth, "SPI_NODE")``)."""
    mod: str | None = None
    name: object = None
    if isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load):
        mod, name, what = _module_of(node.value, f, modules), node.attr, "sets %s.%s"
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("getattr", "hasattr", "setattr")
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
    ):
        mod, name = _module_of(node.args[0], f, modules), node.args[1].value
        what = "reads %s.%s by its name"
    if mod is not None and name in fold.get(mod, {}):
        raise ValueError(
            "%s line %d %s, a constant the deploy folds into the firmware"
            % (f.rel, getattr(node, "lineno", 0), what % (mod, name))
        )


def fold(firmware: dict[str, str], users: dict[str, str] | None = None) -> dict[str, str]:
    """The firmware's files (``{path: source}``, paths relative to its root) and ``users``
    (other files that import its modules, such as tests) with the firmware's public constants
    folded; files nothing changes are returned as they were."""
    users = users or {}
    files = [_File(r, t, ast.parse(t, r), module_name(r)) for r, t in firmware.items()]
    files += [_File(r, t, ast.parse(t, r), None) for r, t in users.items()]
    modules = {str(f.module) for f in files if f.module}
    for f in files:
        _bindings(f, modules)
    # what is folded is decided by the firmware alone: the same whoever else is folded with it
    own = [f for f in files if f.module]
    fold_ = _foldable(own, _constants(own, modules), modules)
    for f in files[len(own) :]:
        for node in ast.walk(f.tree):
            _check_user(f, node, fold_, modules)
    out = {}
    for f in files:
        edits = _edits(f, fold_, modules)
        out[f.rel] = _apply(f.text, edits) if edits else f.text
        if edits:
            ast.parse(out[f.rel], f.rel)  # an edit that breaks the syntax is a bug here
    return out
