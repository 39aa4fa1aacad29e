#!/usr/bin/env python3
"""Compile schemas/config.schema.json into plain Python: ociruntime/_config_validator.py.

Why: `create` validates config.json every time, and importing jsonschema (or
even `re`) costs more than the whole validation should.  The generated module
uses builtins only; regex patterns are turned into small DFA tables here.

It also copies schemas/*.schema.json into ociruntime/schemas/ (package data,
read by ociruntime.validate's jsonschema-based reference validator).

    python3 tools/compile_schema.py          # (re)write the outputs
    python3 tools/compile_schema.py --check  # exit 1 if any output is stale

Only the keywords the schema uses are supported; anything else is an error
here rather than a keyword silently ignored at run time.
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "config.schema.json"
OUTPUT = ROOT / "ociruntime" / "_config_validator.py"
LAZY_OUTPUT = ROOT / "ociruntime" / "_config_validator_rare.py"
# $defs of the sections a Linux container's config seldom has: their
# validators go to LAZY_OUTPUT, imported on first use.  The generated code
# is the largest module `create` loads (its code objects: a third of a
# MiB of create's peak RSS); these are a fifth of it.
LAZY_DEFS = {"Seccomp", "SeccompAction", "FreeBSD", "JailSharing", "JailSharingNoDisable", "ZOS",
             "ArrayOfHooks", "Hook"}
COPIES = {ROOT / "schemas" / n: ROOT / "ociruntime" / "schemas" / n
          for n in ("config.schema.json", "state.schema.json")}


class SchemaError(Exception):
    pass


# --- Patterns: the ECMA-262 subset we accept, compiled to a DFA -------------

MAXCP = 0x10FFFF


def _norm(ranges):
    """Sorted, merged list of inclusive (lo, hi) code point ranges."""
    out = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _negate(ranges):
    out, nxt = [], 0
    for lo, hi in _norm(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= MAXCP:
        out.append((nxt, MAXCP))
    return out


_DIGIT = [(0x30, 0x39)]
_WORD = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_SPACE = [(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
          (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
          (0xFEFF, 0xFEFF)]
_CLASS_ESCAPES = {"d": _DIGIT, "D": _negate(_DIGIT), "w": _WORD, "W": _negate(_WORD),
                  "s": _SPACE, "S": _negate(_SPACE)}
_CHAR_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "f": "\f", "v": "\v", "0": "\0"}
_DOT = _negate([(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)])  # ECMA: not a line terminator


class _RegexParser:
    """Recursive descent over the pattern; AST nodes are
    ("set", ranges) | ("cat", [node]) | ("alt", [node]) | ("rep", node, min, max-or-None)."""

    def __init__(self, pattern):
        self.p, self.i = pattern, 0

    def fail(self, why):
        raise SchemaError(f"pattern {self.p!r}: {why} at offset {self.i}")

    def peek(self):
        return self.p[self.i] if self.i < len(self.p) else None

    def take(self):
        c = self.peek()
        if c is None:
            self.fail("unexpected end")
        self.i += 1
        return c

    def parse(self):
        """Whole pattern -> (ast, anchored_start, anchored_end)."""
        start = self.peek() == "^"
        self.i += start
        ast = self.alt()
        end = self.peek() == "$"
        self.i += end
        if self.i != len(self.p):
            self.fail("unsupported syntax")
        if (start or end) and ast[0] == "alt":
            self.fail("anchors around a top-level '|' are not supported")
        return ast, start, end

    def alt(self):
        branches = [self.cat()]
        while self.peek() == "|":
            self.i += 1
            branches.append(self.cat())
        return branches[0] if len(branches) == 1 else ("alt", branches)

    def cat(self):
        items = []
        while self.peek() not in (None, "|", ")") and not (
                self.peek() == "$" and self.i == len(self.p) - 1):
            items.append(self.quantified(self.atom()))
        return ("cat", items)

    def atom(self):
        c = self.take()
        if c == "(":
            if self.p.startswith("?:", self.i):
                self.i += 2
            elif self.peek() == "?":
                self.fail("lookaround and named groups are not supported")
            node = self.alt()
            if self.take() != ")":
                self.fail("expected ')'")
            return node
        if c == "[":
            return ("set", self.char_class())
        if c == ".":
            return ("set", _DOT)
        if c == "\\":
            return ("set", self.escape())
        if c in "*+?{)^$|":
            self.fail(f"unexpected {c!r}")
        return ("set", [(ord(c), ord(c))])

    def escape(self):
        c = self.take()
        if c in _CLASS_ESCAPES:
            return _CLASS_ESCAPES[c]
        if c in _CHAR_ESCAPES:
            c = _CHAR_ESCAPES[c]
        elif c in "xu":
            n = 2 if c == "x" else 4
            digits = self.p[self.i:self.i + n]
            if len(digits) != n or any(d not in "0123456789abcdefABCDEF" for d in digits):
                self.fail(f"bad \\{c} escape")
            self.i += n
            c = chr(int(digits, 16))
        elif c.isalnum():
            self.fail(f"unsupported escape \\{c}")  # backreferences, \b, \p{...}
        return [(ord(c), ord(c))]

    def char_class(self):
        neg = self.peek() == "^"
        self.i += neg
        ranges = []
        while self.peek() != "]":
            lo = self.class_atom()
            if self.peek() == "-" and self.p[self.i + 1:self.i + 2] not in ("]", ""):
                self.i += 1
                hi = self.class_atom()
                if len(lo) != 1 or len(hi) != 1 or lo[0][0] != lo[0][1] or hi[0][0] != hi[0][1]:
                    self.fail("class escape in a range")
                if lo[0][0] > hi[0][0]:
                    self.fail("range out of order")
                ranges.append((lo[0][0], hi[0][0]))
            else:
                ranges.extend(lo)
        self.i += 1
        return _negate(ranges) if neg else _norm(ranges)

    def class_atom(self):
        c = self.take()
        if c == "\\" and self.peek() == "b":  # in a class, \b is backspace
            self.i += 1
            return [(8, 8)]
        return self.escape() if c == "\\" else [(ord(c), ord(c))]

    def quantified(self, node):
        c = self.peek()
        if c == "*":
            lo, hi = 0, None
        elif c == "+":
            lo, hi = 1, None
        elif c == "?":
            lo, hi = 0, 1
        elif c == "{":
            close = self.p.find("}", self.i)
            body = self.p[self.i + 1:close] if close > 0 else ""
            parts = body.split(",")
            if len(parts) > 2 or not parts[0].isdigit() or not all(
                    x.isdigit() for x in parts[1:] if x):
                self.fail("bad {n,m} quantifier")
            lo = int(parts[0])
            hi = lo if len(parts) == 1 else (int(parts[1]) if parts[1] else None)
            if hi is not None and hi < lo:
                self.fail("{n,m} quantifier with m < n")
            self.i = close
        else:
            return node
        self.i += 1
        if self.peek() == "?":  # lazy: same set of matched strings
            self.i += 1
        if self.peek() in ("*", "+", "?", "{"):
            self.fail("nested quantifier")
        return ("rep", node, lo, hi)


class _NFA:
    def __init__(self):
        self.eps, self.edges = [], []

    def new(self):
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def build(self, node, s):
        """Add node's states after state s; return its (fresh) end state."""
        kind = node[0]
        if kind == "set":
            e = self.new()
            self.edges[s].append((node[1], e))
            return e
        if kind == "cat":
            for n in node[1]:
                s = self.build(n, s)
            return s
        if kind == "alt":
            e = self.new()
            for n in node[1]:
                b = self.new()
                self.eps[s].append(b)
                self.eps[self.build(n, b)].append(e)
            return e
        _, sub, lo, hi = node
        for _ in range(lo):
            s = self.build(sub, s)
        e = self.new()
        self.eps[s].append(e)
        if hi is None:
            # Loop on a fresh state, so that "a*b*" cannot go back to the a's.
            self.eps[self.build(sub, e)].append(e)
            return e
        for _ in range(hi - lo):
            s = self.build(sub, s)
            self.eps[s].append(e)
        return e

    def closure(self, states):
        seen, stack = set(states), list(states)
        while stack:
            for t in self.eps[stack.pop()]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        return frozenset(seen)


def compile_pattern(pattern):
    """JSON Schema `pattern` (search semantics) -> (transitions, accepting states).

    transitions[state] is a tuple of (lo, hi, next_state) over code points;
    a character with no transition rejects the string.
    """
    ast, start_anchor, end_anchor = _RegexParser(pattern).parse()
    anything = ("rep", ("set", [(0, MAXCP)]), 0, None)
    ast = ("cat", ([] if start_anchor else [anything]) + [ast] + ([] if end_anchor else [anything]))
    nfa = _NFA()
    start = nfa.new()
    final = nfa.build(ast, start)
    order = [nfa.closure([start])]
    index = {order[0]: 0}
    table = []
    for S in order:  # grows while we walk it
        edges = [(lo, hi, t) for s in sorted(S) for rs, t in nfa.edges[s] for lo, hi in rs]
        points = sorted({lo for lo, _, _ in edges} | {hi + 1 for _, hi, _ in edges})
        row = []
        for a, b in zip(points, points[1:]):
            targets = [t for lo, hi, t in edges if lo <= a <= hi]
            if not targets:
                continue
            T = nfa.closure(targets)
            if T not in index:
                index[T] = len(order)
                order.append(T)
            j = index[T]
            if row and row[-1][1] == a - 1 and row[-1][2] == j:
                row[-1] = (row[-1][0], b - 1, j)
            else:
                row.append((a, b - 1, j))
        table.append(tuple(row))
    return tuple(table), tuple(i for i, S in enumerate(order) if final in S)


def dfa_match(dfa, s):
    """Reference matcher; the generated module carries the same loop."""
    table, accept = dfa
    st = 0
    for ch in s:
        o = ord(ch)
        for lo, hi, nxt in table[st]:
            if lo <= o <= hi:
                st = nxt
                break
        else:
            return False
    return st in accept


# --- Schema -> Python --------------------------------------------------------

_IGNORED = {"$schema", "$id", "$comment", "$defs", "title", "description", "default", "examples"}
_TYPE_TEST = {
    "object": "isinstance({v}, dict)",
    "array": "isinstance({v}, list)",
    "string": "isinstance({v}, str)",
    "boolean": "isinstance({v}, bool)",
    # bool is an int subclass; JSON true is not an integer.  Floats are not
    # integers either, even 1.0: Go (runc) rejects them too.
    "integer": "(isinstance({v}, int) and {v}.__class__ is not bool)",
    "number": "(isinstance({v}, (int, float)) and {v}.__class__ is not bool)",
    "null": "{v} is None",
}
# Keywords that only look at one kind of instance, and the type they need.
_KIND = {"minLength": "string", "pattern": "string", "minimum": "number", "maximum": "number",
         "minItems": "array", "items": "array", "required": "object", "properties": "object",
         "propertyNames": "object", "additionalProperties": "object"}
_SCALAR_KEYWORDS = {"type", "enum", "const", "pattern", "minLength", "minimum", "maximum"} | _IGNORED


def member_step(key):
    """JSONPath step for an object member (same rule as the generated _k)."""
    return "." + key if key.isidentifier() else "[" + repr(key) + "]"


class _Path:
    """A JSON path suffix under construction: literal text and code parts."""

    def __init__(self, parts=()):
        self.parts = tuple(parts)

    def __add__(self, part):
        return _Path(self.parts + (part,))

    def lit(self, text):
        return self + ("lit", text)

    def code(self, expr):
        return self + ("code", expr)

    def render(self):
        out = []
        for kind, text in self.parts:
            if kind == "lit" and out and out[-1][0] == "lit":
                out[-1] = ("lit", out[-1][1] + text)
            else:
                out.append((kind, text))
        if not out:
            return "''"
        return " + ".join(repr(t) if k == "lit" else t for k, t in out)


class Compiler:
    def __init__(self, schema):
        self.defs = schema.get("$defs", {})
        self.funcs = []       # function sources, in order of creation
        self.lazy_funcs = []  # those of LAZY_DEFS (and their branches)
        self.current = self.funcs   # where a branch of the function being made goes
        self.def_funcs = {}   # $defs name -> function name
        self.consts = []      # module-level "NAME = literal" lines
        self.const_names = {}
        self.n = 0

    def fresh(self, prefix):
        self.n += 1
        return f"{prefix}{self.n}"

    def const(self, prefix, literal):
        if literal not in self.const_names:
            name = f"_{prefix}{len(self.const_names)}"
            self.const_names[literal] = name
            self.consts.append(f"{name} = {literal}")
        return self.const_names[literal]

    def resolve(self, ref):
        if not ref.startswith("#/$defs/") or ref[8:] not in self.defs:
            raise SchemaError(f"unsupported $ref {ref!r}")
        return ref[8:]

    def function(self, name, schema, target=None):
        """Emit `def name(x)` validating x; returns error tuple or None.
        target: the list of function sources it goes to (default: that of
        the function being made, for its branches)."""
        target = self.current if target is None else target
        saved, self.current = self.current, target
        body = []
        self.node(schema, "x", _Path(), "    ", body)
        self.current = saved
        target.append("\n".join([f"def {name}(x):"] + (body or ["    pass"])))

    def def_function(self, def_name):
        if def_name not in self.def_funcs:
            fname = "_d_" + "".join(c if c.isalnum() else "_" for c in def_name)
            while fname in self.def_funcs.values():
                fname += "_"
            self.def_funcs[def_name] = fname
            if def_name in LAZY_DEFS:
                self.function(fname, self.defs[def_name], self.lazy_funcs)
                self.funcs.append(_LAZY_STUB.format(name=fname))
            else:
                self.function(fname, self.defs[def_name], self.funcs)
        return self.def_funcs[def_name]

    def branch(self, schema):
        name = self.fresh("_b")
        self.function(name, schema)
        return name

    def node(self, s, v, path, ind, out, known=None):
        """Append to `out` statements that return (path, message) if v fails s."""
        if not isinstance(s, dict):
            raise SchemaError(f"unsupported schema {s!r} (boolean schemas are not supported)")
        fail = f"{ind}    return {path.render()}, "
        unknown = set(s) - _IGNORED - set(_KIND) - {
            "$ref", "type", "enum", "const", "allOf", "anyOf", "oneOf", "not", "if", "then", "else"}
        if unknown:
            raise SchemaError(f"unsupported keywords {sorted(unknown)}")

        if "$ref" in s:
            target = self.defs[self.resolve(s["$ref"])]
            if set(target) <= _SCALAR_KEYWORDS:
                self.node(target, v, path, ind, out, known)  # small: inline it
            else:
                e = self.fresh("e")
                prefix = path.render()
                ret = e if prefix == "''" else f"{prefix} + {e}[0], {e}[1]"
                out.append(f"{ind}if ({e} := {self.def_function(self.resolve(s['$ref']))}({v})) is not None:")
                out.append(f"{ind}    return {ret}")
            if isinstance(target.get("type"), str):
                known = target["type"]

        if "type" in s:
            types = [s["type"]] if isinstance(s["type"], str) else list(s["type"])
            if any(t not in _TYPE_TEST for t in types):
                raise SchemaError(f"unknown type in {s['type']!r}")
            if types == ["integer"]:
                # The commonest leaf (uint32, int64...): one test, bounds included.
                bounds = f"{v}, {s.get('minimum')!r}, {s.get('maximum')!r}"
                out.append(f"{ind}if _nint({bounds}):")
                out.append(fail + f"_int_msg({bounds})")
                s = {k: x for k, x in s.items() if k not in ("minimum", "maximum")}
            else:
                test = " or ".join(_TYPE_TEST[t].format(v=v) for t in types)
                names = ", ".join(repr(t) for t in types)
                out.append(f"{ind}if not {test if len(types) == 1 else '(' + test + ')'}:")
                out.append(fail + f"_r({v}) + {' is not of type ' + names!r}")
            if len(types) == 1:
                known = types[0]

        for kw in ("enum", "const"):
            if kw not in s:
                continue
            values = s["enum"] if kw == "enum" else [s["const"]]
            # Strings only: then `in frozenset` is exact JSON equality (no 1 == 1.0 == True).
            if not all(isinstance(x, str) for x in values):
                raise SchemaError(f"only string {kw} values are supported")
            name = self.const("E", "frozenset(" + repr(tuple(values)) + ")")
            test = f"{v} in {name}" if known == "string" else f"isinstance({v}, str) and {v} in {name}"
            msg = f" is not one of {values!r}" if kw == "enum" else f" is not {values[0]!r}"
            out.append(f"{ind}if not ({test}):")
            out.append(fail + f"_r({v}) + {msg!r}")

        # Kind-specific keywords, guarded by an isinstance test unless the
        # type is already known.
        for kind in ("string", "number", "array", "object"):
            kws = [k for k in s if _KIND.get(k) == kind]
            if not kws:
                continue
            guarded = known == kind or (kind == "number" and known == "integer")
            inner_ind = ind if guarded else ind + "    "
            inner = []
            getattr(self, "kw_" + kind)(s, v, path, inner_ind, inner)
            if inner and not guarded:
                out.append(f"{ind}if {_TYPE_TEST[kind].format(v=v)}:")
            out.extend(inner)

        for sub in s.get("allOf", ()):
            self.node(sub, v, path, ind, out, known)
        if "anyOf" in s or "oneOf" in s:
            key = "anyOf" if "anyOf" in s else "oneOf"
            calls = [f"{self.branch(sub)}({v}) is None" for sub in s[key]]
            if key == "anyOf":
                out.append(f"{ind}if not ({' or '.join(calls)}):")
                out.append(fail + f"_r({v}) + ' is not valid under any of the given schemas'")
            else:
                c = self.fresh("c")
                out.append(f"{ind}{c} = [{', '.join(calls)}].count(True)")
                out.append(f"{ind}if {c} != 1:")
                out.append(fail + f"_r({v}) + (' is not valid under any of the given schemas'"
                           f" if {c} == 0 else ' is valid under more than one of the given schemas')")
        if "not" in s:
            out.append(f"{ind}if {self.branch(s['not'])}({v}) is None:")
            out.append(fail + f"_r({v}) + ' should not be valid under ' + {json.dumps(s['not'])!r}")
        if "if" in s:
            then, other = [], []
            self.node(s.get("then", {}), v, path, ind + "    ", then, known)
            self.node(s.get("else", {}), v, path, ind + "    ", other, known)
            cond = f"{self.branch(s['if'])}({v}) is None"
            if then:
                out.append(f"{ind}if {cond}:")
                out.extend(then)
                if other:
                    out.append(f"{ind}else:")
                    out.extend(other)
            elif other:
                out.append(f"{ind}if not ({cond}):")
                out.extend(other)
        elif "then" in s or "else" in s:
            raise SchemaError("then/else without if")

    def kw_string(self, s, v, path, ind, out):
        fail = f"{ind}    return {path.render()}, "
        if "minLength" in s:
            n = s["minLength"]
            out.append(f"{ind}if len({v}) < {n}:")
            out.append(fail + f"_r({v}) + {' should be non-empty' if n == 1 else ' is too short'!r}")
        if "pattern" in s:
            table, accept = compile_pattern(s["pattern"])
            rows = "".join(f"\n    {row!r}," for row in table)
            name = self.const("P", f"(({rows}\n), {accept!r})")
            out.append(f"{ind}if not _match({name}, {v}):")
            out.append(fail + f"_r({v}) + {' does not match ' + repr(s['pattern'])!r}")

    def kw_number(self, s, v, path, ind, out):
        fail = f"{ind}    return {path.render()}, "
        for kw, op, word in (("minimum", "<", "less than the minimum"),
                             ("maximum", ">", "greater than the maximum")):
            if kw in s:
                out.append(f"{ind}if {v} {op} {s[kw]!r}:")
                out.append(fail + f"_r({v}) + {f' is {word} of {s[kw]!r}'!r}")

    def kw_array(self, s, v, path, ind, out):
        if "minItems" in s:
            n = s["minItems"]
            out.append(f"{ind}if len({v}) < {n}:")
            out.append(f"{ind}    return {path.render()}, "
                       f"_r({v}) + {' should be non-empty' if n == 1 else ' is too short'!r}")
        if "items" in s:
            i, item = self.fresh("i"), self.fresh("v")
            body = []
            self.node(s["items"], item, path.lit("[").code(f"str({i})").lit("]"), ind + "    ", body)
            if body:
                out.append(f"{ind}for {i}, {item} in enumerate({v}):")
                out.extend(body)

    def kw_object(self, s, v, path, ind, out):
        for key in s.get("required", ()):
            out.append(f"{ind}if {key!r} not in {v}:")
            out.append(f"{ind}    return {path.render()}, {repr(key) + ' is a required property'!r}")
        props = s.get("properties", {})
        for key, sub in props.items():
            item = self.fresh("v")
            body = []
            self.node(sub, item, path.lit(member_step(key)), ind + "    ", body)
            present = f"({item} := {v}.get({key!r}, _MISSING)) is not _MISSING"
            if len(body) == 2 and body[0].startswith(ind + "    if ") and body[1].startswith(ind + "        return "):
                # A single check: fold it into the presence test.
                cond = body[0][len(ind) + 7:-1]
                out.append(f"{ind}if {present} and {'(' + cond + ')' if ' or ' in cond else cond}:")
                out.append(body[1][4:])
            elif body:
                out.append(f"{ind}if {present}:")
                out.extend(body)
        if "propertyNames" in s:
            k = self.fresh("k")
            body = []
            self.node(s["propertyNames"], k, path, ind + "    ", body, "string")
            if body:
                out.append(f"{ind}for {k} in {v}:")
                out.extend(body)
        extra = s.get("additionalProperties", True)
        if extra is True:
            return
        k, item = self.fresh("k"), self.fresh("v")
        names = self.const("N", "frozenset(" + repr(tuple(props)) + ")") if props else None
        skip = [f"{ind}    if {k} in {names}:", f"{ind}        continue"] if names else []
        if extra is False:
            out.append(f"{ind}for {k} in {v}:")
            out.extend(skip)
            out.append(f"{ind}    return {path.render()}, "
                       f"'Additional properties are not allowed (' + repr({k}) + ' was unexpected)'")
            return
        body = []
        self.node(extra, item, path.code(f"_k({k})"), ind + "    ", body)
        if body:
            out.append(f"{ind}for {k}, {item} in {v}.items():")
            out.extend(skip)
            out.extend(body)


_HEADER = '''\
# Generated by tools/compile_schema.py from schemas/config.schema.json: DO NOT EDIT.
# Regenerate with `python3 tools/compile_schema.py` (`--check` tells if stale).
"""Validate an OCI config.json document against schemas/config.schema.json.

validate(doc) returns None when doc is valid, else the first error found as
(json_path, message), e.g. ("$.linux.namespaces[2].type", "'foo' is not one of [...]").
Builtins only, no `re`: this is imported on every `create`.
"""

_MISSING = object()


def _r(v):
    # One short line, whatever the value.
    s = repr(v)
    return s if len(s) <= 64 else s[:61] + "..."


def _k(k):
    # JSONPath step for a member name.
    return "." + k if k.isidentifier() else "[" + repr(k) + "]"


def _nint(v, lo, hi):
    # Not a JSON integer within [lo, hi]?  (bool is an int subclass; floats,
    # even 1.0, are refused as Go's encoding/json refuses them.)
    return (v.__class__ is bool or not isinstance(v, int)
            or (lo is not None and v < lo) or (hi is not None and v > hi))


def _int_msg(v, lo, hi):
    if v.__class__ is bool or not isinstance(v, int):
        return _r(v) + " is not of type 'integer'"
    if lo is not None and v < lo:
        return f"{v} is less than the minimum of {lo}"
    return f"{v} is greater than the maximum of {hi}"


def _match(dfa, s):
    # Patterns are compiled to DFAs: rows of (lo, hi, next) code point ranges.
    table, accept = dfa
    st = 0
    for ch in s:
        o = ord(ch)
        for lo, hi, nxt in table[st]:
            if lo <= o <= hi:
                st = nxt
                break
        else:
            return False
    return st in accept
'''

_FOOTER = '''

def validate(doc):
    """Return None if doc is a valid config, else (json_path, message)."""
    e = _validate(doc)
    return None if e is None else ("$" + e[0], e[1])
'''


_LAZY_STUB = '''def {name}(x):
    from ociruntime._config_validator_rare import {name} as f
    return f(x)'''

_LAZY_HEADER = '''# Generated by tools/compile_schema.py from schemas/config.schema.json: DO NOT EDIT.
# Regenerate with `python3 tools/compile_schema.py` (`--check` tells if stale).
"""The config validator's parts for sections a Linux container's config
seldom has (seccomp, hooks, FreeBSD, z/OS): _config_validator imports
this module the first time a config has one of them."""
'''


def generate_parts(schema):
    """(the validator module, its lazily imported part)."""
    c = Compiler(schema)
    c.function("_validate", schema)
    parts = [_HEADER, "\n".join(c.consts), *c.funcs]
    main = "\n\n\n".join(p.rstrip("\n") for p in parts) + "\n" + _FOOTER
    # What the lazy functions use of the main module: its helpers,
    # constants and validators (not the stubs these functions replace).
    lazy_src = "\n".join(c.lazy_funcs)
    own = set(re.findall(r"^def (\w+)", lazy_src, re.M))
    theirs = set(re.findall(r"^(?:def )?(_\w+)", main, re.M)) - own
    used = sorted(set(re.findall(r"\b_\w+", lazy_src)) & theirs)
    imports = "from ociruntime._config_validator import (\n" + \
        "".join(f"    {n},\n" for n in used) + ")"
    lazy = "\n\n\n".join(p.rstrip("\n") for p in [_LAZY_HEADER + imports, *c.lazy_funcs]) + "\n"
    return main, lazy


def generate(schema):
    return generate_parts(schema)[0]


def main(argv):
    check = argv[1:] == ["--check"]
    if argv[1:] and not check:
        sys.exit(f"usage: {argv[0]} [--check]")
    try:
        main, lazy = generate_parts(json.loads(SCHEMA.read_text()))
        outputs = {OUTPUT: main, LAZY_OUTPUT: lazy}
    except SchemaError as e:
        sys.exit(f"{SCHEMA}: {e}")
    outputs.update((dst, src.read_text()) for src, dst in COPIES.items())
    stale = [p for p, text in outputs.items() if not p.exists() or p.read_text() != text]
    for p in stale:
        rel = p.relative_to(ROOT)
        if check:
            print(f"{rel} is stale: run python3 tools/compile_schema.py", file=sys.stderr)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(outputs[p])
            print(f"wrote {rel}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
