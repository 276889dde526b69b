"""Reading a CSV record by record when a quote runs over lines it should not.

One stray quote at the start of a line opens a quoted field that CSV readers carry over
the following lines until the next quote: thousands of rows vanish into one malformed
record (or, worse, into one value of a record that looks valid), and every row number
after it is off. ``read_lines`` reads such a file again record by record: a record that
runs over several lines is taken as written only when it has the header's number of
fields and none of the lines it swallowed is a record of its own; otherwise the line
where the quote starts is kept aside alone (malformed, naming that line) and reading goes
on with the next line, so the other rows keep their numbers.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["has_line_breaks", "read_lines"]


def has_line_breaks(table: pa.Table, malformed_texts: list[str]) -> bool:
    """Whether a value or a malformed record holds a line break (the sign of a quote
    that ran over lines)."""
    if any("\n" in t for t in malformed_texts):
        return True
    for col in table.columns:
        if pa.types.is_string(col.type) and col.null_count < len(col) and pc.any(
                pc.match_substring(col, "\n")).as_py():
            return True
    return False


def _open(p: Path) -> list[str]:
    if p.suffix.lower() == ".gz":
        with gzip.open(p, "rt", newline="") as gz:
            return gz.readlines()
    with open(p, newline="") as fh:
        return fh.readlines()


def _from(lines: list[str], i: int, used: list[int]) -> Iterator[str]:
    for j in range(i, len(lines)):
        used[0] += 1
        yield lines[j]


def _own_record(line: str, width: int) -> bool:
    """A line that is a whole record by itself (as many fields as the header)."""
    return len(line.rstrip("\r\n").split(",")) == width


def read_lines(p: Path, header: list[str]
               ) -> tuple[pa.Table, np.ndarray, tuple[tuple[int, str, str], ...]]:
    """The file's records as text columns (empty is null), their row numbers and the
    malformed ones (row number, text, reason naming the line)."""
    lines = _open(p)
    width = len(header)
    values: list[list[str | None]] = [[] for _ in header]
    rows: list[int] = []
    malformed: list[tuple[int, str, str]] = []
    i, number = 1, 0
    while i < len(lines):
        line = lines[i]
        if width > 1 and not line.strip("\r\n"):
            i += 1
            continue
        number += 1
        used = [0]
        try:
            record = next(csv.reader(_from(lines, i, used)))
        except (csv.Error, StopIteration) as exc:
            malformed.append((number, line.rstrip("\r\n"), f"line {i + 1}: {exc}"))
            i += 1
            continue
        n = used[0]
        if n > 1 and (len(record) != width or any(_own_record(ln, width)
                                                  for ln in lines[i + 1:i + n])):
            malformed.append((number, line.rstrip("\r\n"), (
                f"line {i + 1} has a quote that opens a field it does not close; read as "
                f"CSV it would swallow the next {n - 1} line(s) into one record. The line "
                "was kept aside alone and the lines after it were read as rows: remove or "
                "double the stray quote")))
            i += 1
            continue
        if len(record) != width:
            malformed.append((number, "".join(lines[i:i + n]).rstrip("\r\n"),
                              f"row has {len(record)} field(s); the header has {width}"))
        else:
            rows.append(number)
            for k, v in enumerate(record):
                values[k].append(v if v != "" else None)
        i += n
    table = pa.table({h: pa.array(v, type=pa.string()) for h, v in zip(header, values,
                                                                       strict=True)})
    return table, np.asarray(rows, dtype="int64"), tuple(malformed)
