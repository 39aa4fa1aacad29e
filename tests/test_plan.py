"""The plan encoding: Python's op table matches the C core's."""
import re
from pathlib import Path

from ociruntime.plan import OPS, Plan

CORE_H = Path(__file__).resolve().parents[1] / "csrc" / "core.h"


def test_op_numbers_match_core_h():
    text = CORE_H.read_text()
    body = re.search(r"enum oci_op \{(.*?)\};", text, re.S).group(1)
    names = re.findall(r"^\s*OP_(\w+)", body, re.M)
    assert names[-1] == "_COUNT"
    assert tuple(names[:-1]) == OPS


def test_encoding_of_ints_and_strings():
    p = Plan().add("SETNS", "/proc/1/ns/net", 0x40000000).add("CAPS", 1 << 63, 0, -1, 5)
    data = p.encode()
    assert data.startswith((1).to_bytes(4, "little") + (2).to_bytes(4, "little"))
    assert b"/proc/1/ns/net\0" in data


def test_int64_and_uint64_values_and_nothing_wider():
    data = Plan().add("CAPS", 1 << 63, -1, (1 << 64) - 1, -(1 << 63)).encode()
    words = [data[8 + 12 * i + 4:8 + 12 * i + 12] for i in range(4)]
    assert words == [(1 << 63).to_bytes(8, "little"), b"\xff" * 8, b"\xff" * 8,
                     (1 << 63).to_bytes(8, "little")]
    import pytest
    for bad in (1 << 64, -(1 << 63) - 1):
        with pytest.raises(ValueError):
            Plan().add("UMASK", bad)


def test_nul_in_string_is_refused():
    import pytest
    with pytest.raises(ValueError):
        Plan().add("CHDIR", "a\0b")
