"""The GVariant text format of `org.systemd.property.NAME` annotations
(runc parses them with godbus's ParseVariant): the subset that unit
properties use.

  true, false                     b
  'text', "text"                  s   (backslash escapes \\ \' \" \n \t)
  123, -5                         i   (a bare integer is an int32)
  1.5, 2e3                        d
  byte|int16|uint16|int32|uint32|int64|uint64 N    y n q i u x t
  double X                        d
  [v, v...]                       an array of one element type
  @as [] (or @at [] ...)          a typed (possibly empty) array
  objectpath '/x'                 o

parse(text) -> (signature, value), or ValueError saying what is wrong.
"""

_INTS = {"byte": ("y", 0, 255), "int16": ("n", -(1 << 15), (1 << 15) - 1),
         "uint16": ("q", 0, (1 << 16) - 1), "int32": ("i", -(1 << 31), (1 << 31) - 1),
         "uint32": ("u", 0, (1 << 32) - 1), "int64": ("x", -(1 << 63), (1 << 63) - 1),
         "uint64": ("t", 0, (1 << 64) - 1)}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


class _Parser:
    def __init__(self, text):
        self.s, self.i = text, 0

    def ws(self):
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def word(self):
        self.ws()
        j = self.i
        while j < len(self.s) and (self.s[j].isalnum() or self.s[j] in "@+-._"):
            j += 1
        w, self.i = self.s[self.i:j], j
        return w

    def value(self, want=None):
        self.ws()
        if self.i >= len(self.s):
            raise ValueError("a value is missing")
        c = self.s[self.i]
        if c in "'\"":
            return self.string(want)
        if c == "[":
            return self.array(want)
        w = self.word()
        if w.startswith("@"):
            return self.value(w[1:])
        if w in ("true", "false"):
            return self._check("b", w == "true", want)
        if w in _INTS:
            return self.number(self.word(), _INTS[w][0])
        if w == "double":
            return self.number(self.word(), "d")
        if w == "objectpath":
            sig, v = self.string(None)
            return "o", v
        if not w:
            raise ValueError(f"unexpected {c!r} at {self.i}")
        return self.number(w, want if want in ("d",) + tuple(t[0] for t in _INTS.values()) else None)

    def _check(self, sig, v, want):
        if want and want != sig:
            raise ValueError(f"{v!r} is not of type {want}")
        return sig, v

    def number(self, w, sig):
        try:
            if sig == "d" or (sig is None and any(ch in w for ch in ".eE")):
                return "d", float(w)
            n = int(w, 0)
        except ValueError:
            raise ValueError(f"{w!r} is not a number") from None
        sig = sig or "i"
        lo, hi = next((lo, hi) for s, lo, hi in _INTS.values() if s == sig)
        if not lo <= n <= hi:
            raise ValueError(f"{n} does not fit in type {sig}")
        return sig, n

    def string(self, want):
        q = self.s[self.i]
        self.i += 1
        out = []
        while True:
            if self.i >= len(self.s):
                raise ValueError("a string is not closed")
            c = self.s[self.i]
            self.i += 1
            if c == q:
                break
            if c == "\\":
                if self.i >= len(self.s):
                    raise ValueError("a string is not closed")
                c = _ESCAPES.get(self.s[self.i], self.s[self.i])
                self.i += 1
            out.append(c)
        return self._check(want if want == "o" else "s", "".join(out), want)

    def array(self, want):
        if want is not None and not want.startswith("a"):
            raise ValueError(f"an array is not of type {want}")
        self.i += 1
        elem, items = (want[1:] if want else None), []
        self.ws()
        if self.s[self.i:self.i + 1] == "]":
            self.i += 1
            if elem is None:
                raise ValueError("an empty array needs a type: @as []")
            return "a" + elem, items
        while True:
            sig, v = self.value(elem)
            if elem is not None and sig != elem:
                raise ValueError(f"an array mixes types {elem} and {sig}")
            elem = sig
            items.append(v)
            self.ws()
            c = self.s[self.i:self.i + 1]
            self.i += 1
            if c == "]":
                return "a" + elem, items
            if c != ",":
                raise ValueError("an array's items are separated by ','")


def parse(text):
    p = _Parser(text)
    sig, v = p.value()
    p.ws()
    if p.i != len(p.s):
        raise ValueError(f"unexpected {p.s[p.i:]!r} after the value")
    return sig, v
