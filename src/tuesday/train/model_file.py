"""Checking a LightGBM text model file before LightGBM reads it.

LightGBM trusts its model files: a file cut short makes it read past the end of the text
(``tree_sizes`` point beyond it), a changed array length or a huge ``num_leaves`` makes
it abort the process, a child index out of range crashes the first prediction, a cycle
between nodes makes every prediction loop for ever (holding the GIL, so the process
answers nothing, not even SIGTERM), and a leaf index out of range reads whatever memory
is there. A file whose sha256 matches its manifest can still be such a file (written by
a bad tool, registered by mistake), so every LightGBM file is checked here, at
registration and at every load, and refused with ``ArtifactCorrupt`` naming the tree and
what is wrong:

* the header: ``tree`` first, ``num_class`` / ``num_tree_per_iteration`` /
  ``max_feature_idx`` whole numbers in bounds, as many feature names and infos as
  features, ``tree_sizes`` with one size per tree that add up to where each tree starts;
* each tree: ``Tree=i`` in order, ``num_leaves`` in 1..``MAX_LEAVES``, ``num_cat``, every
  array as long as the number of leaves says, numbers that parse (thresholds and leaf
  values not NaN), feature indices below ``max_feature_idx + 1``, child indices in range,
  every node and leaf reached exactly once from the root (no cycle, nothing shared or
  orphaned), categorical boundaries and bitsets in range, the linear-tree arrays;
* ``end of trees`` and, when present, ``end of parameters``.
"""

from __future__ import annotations

import itertools
import math
import re

from tuesday.errors import ArtifactCorrupt

__all__ = ["MAX_FEATURES", "MAX_LEAVES", "MAX_TREES", "check_lightgbm_text"]

#: LightGBM's own upper bound on num_leaves (``Config::num_leaves <= 131072``)
MAX_LEAVES = 131_072
#: bounds on what a model file may declare (far beyond any real model)
MAX_FEATURES = 1_000_000
MAX_TREES = 1_000_000
MAX_CLASSES = 10_000

_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf(?:inity)?|nan",
                    re.IGNORECASE)
#: arrays of one entry per internal node, and of one per leaf
_NODE_ARRAYS = ("split_feature", "split_gain", "threshold", "decision_type", "left_child",
                "right_child", "internal_value", "internal_weight", "internal_count")
_LEAF_ARRAYS = ("leaf_value", "leaf_weight", "leaf_count")
_REQUIRED_NODE = ("split_feature", "threshold", "decision_type", "left_child", "right_child")


class _Bad(Exception):
    """One problem of the file, as a phrase (turned into ``ArtifactCorrupt``)."""


def check_lightgbm_text(data: bytes | str, *, what: str = "The model file") -> None:
    """Refuse a LightGBM text model that LightGBM could not read safely.

    Args:
        data: The file's bytes (or text).
        what: How the error names the file, e.g. ``"Model 'm' version 3 (artifact 1a2b)"``.

    Raises:
        ArtifactCorrupt: naming the tree and what is wrong with it.
    """
    raw = data.encode() if isinstance(data, str) else bytes(data)
    try:
        _check(raw)
    except _Bad as exc:
        raise ArtifactCorrupt(
            f"{what} is not a valid LightGBM model: {exc}.",
            fix="The file was changed or written by a broken tool after training; retrain "
                "the model (`tuesday train MODEL`) and promote the new version.") from None


def _check(raw: bytes) -> None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Bad(f"it is not UTF-8 text ({exc})") from None
    if "\0" in text:
        raise _Bad("it contains NUL bytes")
    first = raw.find(b"\nTree=")
    if not text.startswith("tree\n") or first < 0:
        raise _Bad("it does not start with a 'tree' header followed by trees")
    end = raw.find(b"end of trees", first)
    if end < 0:
        raise _Bad("it has no 'end of trees' line (the file is cut short)")
    head = _fields(text[:first].splitlines()[1:], "the header")
    nfeat = _header(head)
    sizes = head.get("tree_sizes", "").split()
    # tree_sizes is optional (LightGBM then reads the trees one after the other)
    starts = _tree_starts(raw, first + 1, end, sizes) if sizes else \
        _scanned_starts(raw, first + 1, end)
    per_iter = _int(head, "num_tree_per_iteration", "the header", lo=1, hi=MAX_CLASSES,
                    default="1")
    if len(starts) % per_iter:
        raise _Bad(f"it has {len(starts)} trees, not a multiple of num_tree_per_iteration="
                   f"{per_iter}")
    for i, (a, b) in enumerate(zip(starts, [*starts[1:], end], strict=True)):
        _tree(raw[a:b].decode("utf-8"), i, nfeat)
    tail = raw[end:].decode("utf-8")
    if "\nparameters:" in tail and "end of parameters" not in tail:
        raise _Bad("its parameters section has no 'end of parameters' (the file is cut "
                   "short)")


def _fields(lines: list[str], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            if where == "the header" and line.strip() in ("average_output",):
                continue
            raise _Bad(f"{where} has a line that is not key=value: {line[:60]!r}")
        if key in out:
            raise _Bad(f"{where} has {key!r} twice")
        out[key] = value
    return out


def _int(f: dict[str, str], key: str, where: str, *, lo: int, hi: int,
         default: str | None = None) -> int:
    value = f.get(key, default)
    if value is None:
        raise _Bad(f"{where} has no {key}")
    if not _INT.fullmatch(value.strip()):
        raise _Bad(f"{where}: {key}={value[:40]!r} is not a whole number")
    n = int(value)
    if not lo <= n <= hi:
        raise _Bad(f"{where}: {key}={n} is outside {lo}..{hi}")
    return n


def _header(head: dict[str, str]) -> int:
    """Check the header's fields; the number of features."""
    _int(head, "num_class", "the header", lo=1, hi=MAX_CLASSES, default="1")
    nfeat = _int(head, "max_feature_idx", "the header", lo=0, hi=MAX_FEATURES - 1) + 1
    if "objective" in head and not head["objective"].strip():
        raise _Bad("the header's objective is empty")
    for key in ("feature_names", "feature_infos"):
        got = len(head.get(key, "").split())
        if key in head and got != nfeat:
            raise _Bad(f"the header lists {got} {key} for max_feature_idx+1={nfeat} features")
    return nfeat


def _tree_starts(raw: bytes, first: int, end: int, sizes: list[str]) -> list[int]:
    """Where each tree starts, from tree_sizes, checked against the text."""
    if len(sizes) > MAX_TREES:
        raise _Bad(f"tree_sizes lists {len(sizes)} trees (at most {MAX_TREES})")
    starts = []
    at = first
    for i, s in enumerate(sizes):
        if not _INT.fullmatch(s) or int(s) <= 0:
            raise _Bad(f"tree_sizes entry {i} is {s[:20]!r}, not a positive whole number")
        if not raw.startswith(f"Tree={i}\n".encode(), at):
            found = raw[at:at + 20].split(b"\n")[0].decode("utf-8", "replace")
            raise _Bad(f"tree {i} does not start where tree_sizes says (byte {at} holds "
                       f"{found!r}, expected 'Tree={i}'); tree_sizes does not match the trees")
        starts.append(at)
        at += int(s)
        if at > end:
            raise _Bad(f"tree {i} runs past 'end of trees' by tree_sizes (the file is cut "
                       "short or tree_sizes was changed)")
    if raw[at:end].strip():
        raise _Bad(f"there is text after the {len(sizes)} trees of tree_sizes and before "
                   "'end of trees' (more trees than tree_sizes lists)")
    return starts


def _scanned_starts(raw: bytes, first: int, end: int) -> list[int]:
    """Where each tree starts when the header has no tree_sizes: every 'Tree=i' line, in
    order from 0."""
    starts: list[int] = []
    at = first
    while 0 <= at < end:
        if not raw.startswith(f"Tree={len(starts)}\n".encode(), at):
            found = raw[at:at + 20].split(b"\n")[0].decode("utf-8", "replace")
            raise _Bad(f"tree {len(starts)} is missing or out of order (byte {at} holds "
                       f"{found!r})")
        starts.append(at)
        if len(starts) > MAX_TREES:
            raise _Bad(f"it has more than {MAX_TREES} trees")
        nxt = raw.find(b"\nTree=", at + 1, end)
        at = nxt + 1 if nxt >= 0 else -1
    return starts


def _array(f: dict[str, str], key: str, where: str, n: int, kind: str, *,
           required: bool = True) -> list[float] | list[int]:
    if key not in f or (not required and not f[key].strip()):
        if required and n > 0:
            raise _Bad(f"{where} has no {key}")
        return []
    parts = f[key].split()
    if len(parts) != n:
        raise _Bad(f"{where}: {key} has {len(parts)} values; expected {n}")
    pattern = _INT if kind == "int" else _FLOAT
    for j, p in enumerate(parts):
        if not pattern.fullmatch(p):
            raise _Bad(f"{where}: {key}[{j}]={p[:30]!r} is not a "
                       f"{'whole number' if kind == 'int' else 'number'}")
    return [int(p) for p in parts] if kind == "int" else [float(p) for p in parts]


def _tree(block: str, i: int, nfeat: int) -> None:
    where = f"tree {i}"
    lines = block.split("\n")
    f = _fields(lines[1:], where)
    n = _int(f, "num_leaves", where, lo=1, hi=MAX_LEAVES)
    ncat = _int(f, "num_cat", where, lo=0, hi=max(n - 1, 0), default="0")
    node: dict[str, list[int] | list[float]] = {}
    for key in _NODE_ARRAYS:
        kind = "int" if key in ("split_feature", "decision_type", "left_child",
                                "right_child", "internal_count") else "float"
        node[key] = _array(f, key, where, n - 1, kind, required=key in _REQUIRED_NODE)
    leaf_value = _array(f, "leaf_value", where, n, "float")
    for key in _LEAF_ARRAYS[1:]:
        _array(f, key, where, n, "float", required=False)
    _array(f, "shrinkage", where, 1, "float", required=False)
    for j, v in enumerate(leaf_value):
        if math.isnan(v) or math.isinf(v):
            raise _Bad(f"{where}: leaf_value[{j}] is {v}")
    for j, v in enumerate(node["threshold"]):
        if math.isnan(v):
            raise _Bad(f"{where}: threshold[{j}] is NaN")
    for j, feat in enumerate(node["split_feature"]):
        if not 0 <= feat < nfeat:
            raise _Bad(f"{where}: split_feature[{j}]={feat} is not a feature index "
                       f"(0..{nfeat - 1})")
    _structure(where, n, node["left_child"], node["right_child"])  # type: ignore[arg-type]
    _categorical(f, where, ncat, node["decision_type"], node["threshold"])  # type: ignore[arg-type]
    if f.get("is_linear", "0").strip() not in ("0", "1"):
        raise _Bad(f"{where}: is_linear={f['is_linear'][:20]!r} is not 0 or 1")
    if f.get("is_linear", "0").strip() == "1":
        _linear(f, where, n, nfeat)


def _structure(where: str, n: int, left: list[int], right: list[int]) -> None:
    """Every child index in range; every node and leaf reached exactly once from node 0."""
    if n == 1:
        return
    seen_node = [False] * (n - 1)
    seen_leaf = [False] * n
    stack = [0]
    seen_node[0] = True
    while stack:
        j = stack.pop()
        for side, child in (("left_child", left[j]), ("right_child", right[j])):
            if child >= 0:
                if child >= n - 1:
                    raise _Bad(f"{where}: {side}[{j}]={child} is not a node (0..{n - 2})")
                if seen_node[child]:
                    raise _Bad(f"{where}: node {child} is reached twice ({side}[{j}]); the "
                               "nodes form a cycle or share a child")
                seen_node[child] = True
                stack.append(child)
            else:
                leaf = ~child
                if leaf >= n:
                    raise _Bad(f"{where}: {side}[{j}]={child} names leaf {leaf}; the tree "
                               f"has {n} leaves (-1..-{n})")
                if seen_leaf[leaf]:
                    raise _Bad(f"{where}: leaf {leaf} is reached twice ({side}[{j}])")
                seen_leaf[leaf] = True
    if not all(seen_node) or not all(seen_leaf):
        missing = ([f"node {k}" for k, s in enumerate(seen_node) if not s] +
                   [f"leaf {k}" for k, s in enumerate(seen_leaf) if not s])
        raise _Bad(f"{where}: {', '.join(missing[:5])} cannot be reached from the root")


def _categorical(f: dict[str, str], where: str, ncat: int, decision: list[int],
                 threshold: list[float]) -> None:
    for j, d in enumerate(decision):
        if not 0 <= d <= 127:
            raise _Bad(f"{where}: decision_type[{j}]={d} is outside 0..127")
    if ncat == 0:
        if any(d & 1 for d in decision):
            raise _Bad(f"{where}: a categorical split but num_cat=0")
        return
    bounds = _array(f, "cat_boundaries", where, ncat + 1, "int")
    if bounds[0] != 0 or any(b > c for b, c in itertools.pairwise(bounds)):
        raise _Bad(f"{where}: cat_boundaries do not rise from 0")
    if bounds[-1] > 1_000_000:
        raise _Bad(f"{where}: cat_boundaries end at {bounds[-1]} (too many bitset words)")
    words = _array(f, "cat_threshold", where, int(bounds[-1]), "int")
    if any(not 0 <= w < 2 ** 32 for w in words):
        raise _Bad(f"{where}: a cat_threshold word is not a 32-bit unsigned number")
    for j, d in enumerate(decision):
        if d & 1:
            k = threshold[j]
            if k != int(k) or not 0 <= int(k) < ncat:
                raise _Bad(f"{where}: categorical threshold[{j}]={k} is not a category "
                           f"set index (0..{ncat - 1})")


def _linear(f: dict[str, str], where: str, n: int, nfeat: int) -> None:
    _array(f, "leaf_const", where, n, "float")
    counts = _array(f, "num_features", where, n, "int")
    if any(c < 0 or c > nfeat for c in counts):
        raise _Bad(f"{where}: num_features of a leaf is outside 0..{nfeat}")
    total = int(sum(counts))
    feats = _array(f, "leaf_features", where, total, "int", required=total > 0)
    _array(f, "leaf_coeff", where, total, "float", required=total > 0)
    if any(not 0 <= x < nfeat for x in feats):
        raise _Bad(f"{where}: leaf_features has an index outside 0..{nfeat - 1}")
