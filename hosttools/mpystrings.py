"""A .mpy module's string constants loaded as shared names rather than objects of their own.

mpy-cross keeps a string literal of more than 10 characters that is not a name already (an
event's name, ``"binding_refresh"``; a message) as a constant in the module's object table, and
a board that loads the .mpy makes each one a str object of its heap: 16 bytes and its characters
rounded up to 16, some 32-48 bytes at 32 bits, once per module that uses it. But when
MicroPython loads a str constant it first looks for a name (qstr) with those characters and
takes the name when there is one (py/objstr.c, ``mp_obj_new_str_type_from_vstr``), and a .mpy's
names are loaded before its objects (py/persistentcode.c). So ``share_strings`` appends each of
a module's string constants to the end of its name table, where no bytecode refers to them (it
refers to the table's entries by their place, and those before do not move): each then loads
as a name, its characters once in the heap's name pool (a name costs its characters and a
slot of the pool, which grows by doubling and had room), shared with every other module that
uses it. Not in a module the firmware drops once it has run (``dropped_modules``: the start's,
the settings', an update's): its strings, objects, go with it, where names would stay for good.
The agent's 46 such strings were 1.8 KB of its heap; shared, its whole board took 0.8 KB less
at 32 bits, every role's 0.6-0.9 KB (docs/FIRMWARE.md "Strings as names").

The format (py/persistentcode.c, .mpy version 6): a 4-byte header, the number of names and of
objects (variable-length unsigned ints, 7 bits a byte, most significant first, the top bit set
on all but the last byte), the names (a static name as its index << 1 | 1; any other as its
length << 1, its bytes and a 0), then the objects, then the code.
"""

from __future__ import annotations

import ast

from hosttools.errors import RoamError

# the object table's types (py/persistentcode.h MP_PERSISTENT_OBJ_*): these carry a length and
# bytes (str and bytes a terminating 0 too), a tuple a count and its objects, the rest nothing
_OBJ_STR, _OBJ_BYTES, _OBJ_INT, _OBJ_FLOAT, _OBJ_COMPLEX, _OBJ_TUPLE = 5, 6, 7, 8, 9, 10
_MAX_NAME = 255  # a name's length is one byte (MICROPY_QSTR_BYTES_IN_LEN)


def _vuint(b: bytes, i: int) -> tuple[int, int]:
    v = 0
    while True:
        x = b[i]
        i += 1
        v = (v << 7) | (x & 0x7F)
        if not x & 0x80:
            return v, i


def _encode_vuint(v: int) -> bytes:
    out = [v & 0x7F]
    v >>= 7
    while v:
        out.append(0x80 | (v & 0x7F))
        v >>= 7
    return bytes(reversed(out))


def _tables(mpy: bytes) -> tuple[list[str], int, int, int, int]:
    """(the names less the static ones, the count of names, where the names begin and where
    they end (where the objects begin), the count of objects)."""
    if mpy[:1] != b"M" or len(mpy) < 6:
        raise RoamError("not a .mpy file")
    n, i = _vuint(mpy, 4)
    n_obj, i = _vuint(mpy, i)
    start = i
    out = []
    for _ in range(n):
        ln, i = _vuint(mpy, i)
        if ln & 1:
            continue  # a static name: its index
        ln >>= 1
        out.append(mpy[i : i + ln].decode())
        i += ln + 1
    return out, n, start, i, n_obj


def names(mpy: bytes) -> list[str]:
    """The names a .mpy file interns when it loads: its name table less the static names."""
    return _tables(mpy)[0]


def strings(mpy: bytes) -> list[str]:
    """The str constants of a .mpy file's object table (in tuples too), in order. A board loads
    each as an object of its own unless a name of those characters exists by then."""
    _, _, _, i, n_obj = _tables(mpy)
    out: list[str] = []

    def obj(i: int) -> int:
        kind = mpy[i]
        i += 1
        if kind == _OBJ_TUPLE:
            n, i = _vuint(mpy, i)
            for _ in range(n):
                i = obj(i)
        elif _OBJ_STR <= kind <= _OBJ_COMPLEX:
            ln, i = _vuint(mpy, i)
            if kind == _OBJ_STR:
                out.append(mpy[i : i + ln].decode())
            i += ln + (1 if kind in (_OBJ_STR, _OBJ_BYTES) else 0)
        return i

    for _ in range(n_obj):
        i = obj(i)
    return out


def share_strings(mpy: bytes) -> bytes:
    """``mpy`` with its str constants (those not among its names already, and short enough
    for a name) appended to its name table, so that a board loads each as a name."""
    have, n, start, end, n_obj = _tables(mpy)
    add: list[bytes] = []
    seen = set(have)
    for s in strings(mpy):
        data = s.encode()
        if s not in seen and len(data) <= _MAX_NAME:
            seen.add(s)
            add.append(data)
    if not add:
        return mpy
    head = mpy[:4] + _encode_vuint(n + len(add)) + _encode_vuint(n_obj)
    extra = b"".join(_encode_vuint(len(d) << 1) + d + b"\0" for d in add)
    return head + mpy[start:end] + extra + mpy[end:]


def dropped_modules(texts: dict[str, str]) -> set[str]:
    """The modules the firmware (``texts``: {path: source}) forgets once they have run: every
    name a ``sys.modules.pop(NAME, ...)`` of its sources names, a string or a loop variable
    over a tuple of strings."""
    out: set[str] = set()
    for text in texts.values():
        tree = ast.parse(text)
        loops: dict[str, list[str]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
                if isinstance(node.iter, (ast.Tuple, ast.List)):
                    loops[node.target.id] = [
                        e.value
                        for e in node.iter.elts
                        if isinstance(e, ast.Constant) and isinstance(e.value, str)
                    ]
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and ast.unparse(node.func) == "sys.modules.pop"
                and node.args
            ):
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    out.add(arg.value)
                elif isinstance(arg, ast.Name):
                    out.update(loops.get(arg.id, ()))
    return out
