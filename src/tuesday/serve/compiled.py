"""Compiled LightGBM inference: a model's trees as C, compiled once, answers identical.

LightGBM walks its trees through tables (node arrays) and, for one row through the C
API, first turns the row into a sparse (index, value) list. Emitting each tree as nested
``if``s with its thresholds and leaf values as constants, compiled by the machine's C
compiler, removes both costs. The generated code mirrors LightGBM's own decisions step
by step, so every answer is bit-for-bit LightGBM's:

* the row is read as LightGBM's dense-row reader reads it: a value with
  ``|v| <= 1e-35f`` that is not NaN becomes 0.0;
* a numerical split follows ``Tree::NumericalDecision`` (missing type none / zero /
  NaN, default direction), a categorical split ``Tree::CategoricalDecision`` (the same
  ``int`` conversion, the same bitset lookup);
* trees are added in file order, from 0.0, in double precision, without reassociation
  or fused multiply-add (``-ffp-contract=off``, no fast-math);
* the objective's output transform is LightGBM's (``1 / (1 + exp(-sigmoid * s))`` for
  binary, ``exp`` for poisson/gamma/tweedie, identity for regression) through the same
  C library ``exp``.

Literals are written as Python's shortest round-trip form of the doubles LightGBM parses
from its text file, which the C compiler reads back to the same double.

Models the generator does not cover (linear trees, multi-class, averaged output, other
objectives) give ``None`` and keep LightGBM's C API. And a compiled model is only used
after it agreed with LightGBM to the last bit on probe rows that take both sides of every
split, with missing values and zeros (``Compiled.check``); otherwise it is dropped, with
a warning in the log.

Compiled libraries are cached in a directory of the user's (``cache_dir()``), named by a
hash of the model and compiler, with the sha256 of the library beside it. The directory
must belong to the user and be closed to others (else nothing is compiled); a library is
loaded only if the file loaded is the one whose bytes were hashed, and one whose digest
does not match is rebuilt, never loaded. Builds of the same model by several processes
(server workers) are serialised by a file lock.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import sysconfig
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: bump when the generated code changes, so cached libraries are rebuilt
CODEGEN_VERSION = 1
#: LightGBM's kZeroThreshold: the float 1e-35 as a double
ZERO = "1.0000000180025095e-35"
CFLAGS = ("-O1", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math",
          "-fno-strict-aliasing")
OBJECTIVES_EXP = ("poisson", "gamma", "tweedie")
OBJECTIVES_IDENTITY = ("regression", "regression_l2", "l2", "mean_squared_error", "mse",
                       "regression_l1", "l1", "mean_absolute_error", "mae", "huber",
                       "fair", "quantile", "mape", "mean_absolute_percentage_error")


@dataclass(frozen=True)
class Tree:
    """One tree of a LightGBM text model, as the arrays of its section."""

    num_leaves: int
    split_feature: tuple[int, ...]
    threshold: tuple[float, ...]
    decision_type: tuple[int, ...]
    left_child: tuple[int, ...]
    right_child: tuple[int, ...]
    leaf_value: tuple[float, ...]
    cat_boundaries: tuple[int, ...]
    cat_threshold: tuple[int, ...]


@dataclass(frozen=True)
class Parsed:
    num_features: int
    objective: str
    sigmoid: float
    trees: tuple[Tree, ...]


class Unsupported(Exception):
    """The model uses something the generator does not cover."""


def parse(text: str) -> Parsed:
    """The parts of a LightGBM text model that prediction needs."""
    head, _, rest = text.partition("\nTree=")
    fields = dict(_kv(line) for line in head.splitlines() if "=" in line)
    if int(fields.get("num_class", "1")) != 1 or int(
            fields.get("num_tree_per_iteration", "1")) != 1:
        raise Unsupported("more than one tree per iteration (multi-class)")
    if "average_output" in head.split():
        raise Unsupported("averaged output (random forest mode)")
    obj = fields.get("objective", "regression").split()
    name, opts = obj[0], dict(_kv(o, ":") for o in obj[1:] if ":" in o)
    if name == "binary":
        sigmoid = float(opts.get("sigmoid", "1"))
    elif name in OBJECTIVES_EXP or name in OBJECTIVES_IDENTITY:
        if "sqrt" in obj[1:]:
            raise Unsupported("regression with sqrt-transformed labels")
        sigmoid = 0.0
    else:
        raise Unsupported(f"objective {name!r}")
    body = rest.split("\nend of trees", 1)[0]
    trees = tuple(_tree(block) for block in ("Tree=" + body).split("\nTree=") if block)
    if not trees:
        raise Unsupported("no trees")
    return Parsed(int(fields["max_feature_idx"]) + 1, name, sigmoid, trees)


def _kv(line: str, sep: str = "=") -> tuple[str, str]:
    k, _, v = line.partition(sep)
    return k.strip(), v.strip()


def _tree(block: str) -> Tree:
    f = dict(_kv(line) for line in block.splitlines() if "=" in line)
    if f.get("is_linear", "0") != "0":
        raise Unsupported("linear trees")

    def ints(k: str) -> tuple[int, ...]:
        return tuple(int(v) for v in f.get(k, "").split())

    def floats(k: str) -> tuple[float, ...]:
        return tuple(float(v) for v in f.get(k, "").split())

    n = int(f["num_leaves"])
    tree = Tree(n, ints("split_feature"), floats("threshold"), ints("decision_type"),
                ints("left_child"), ints("right_child"), floats("leaf_value"),
                ints("cat_boundaries"), ints("cat_threshold"))
    if len(tree.leaf_value) != n or (n > 1 and len(tree.split_feature) != n - 1):
        raise Unsupported("a tree whose arrays do not match its number of leaves")
    return tree


# ---------------------------------------------------------------------- C source


def c_source(parsed: Parsed) -> str:
    """The C translation unit for a parsed model."""
    out = [
        "/* generated by tuesday.compiled from a LightGBM text model */",
        "#include <math.h>",
        "#include <stdint.h>",
        f"#define KZ {ZERO}",
        "static int in_bitset(const uint32_t* bits, int n, int pos) {",
        "  int i1 = pos / 32; if (i1 >= n) return 0;",
        "  return (bits[i1] >> (pos % 32)) & 1;",
        "}",
        # Tree::CategoricalDecision of LightGBM 4: NaN and negative values go right
        "static int cat_left(double fval, const uint32_t* bits, int n) {",
        "  if (isnan(fval)) return 0;",
        "  int int_fval = (int)fval;",
        "  if (int_fval < 0) return 0;",
        "  return in_bitset(bits, n, int_fval);",
        "}",
    ]
    for t, tree in enumerate(parsed.trees):
        out.extend(_tree_c(t, tree))
    nf = parsed.num_features
    out.append("static double raw(const double* in) {")
    out.append(f"  double x[{nf}];")
    out.append(f"  for (int i = 0; i < {nf}; ++i) {{")
    out.append("    double v = in[i];")
    out.append("    x[i] = (fabs(v) > KZ || isnan(v)) ? v : 0.0;")
    out.append("  }")
    out.append("  double s = 0.0;")
    out.extend(f"  s += t{t}(x);" for t in range(len(parsed.trees)))
    out.append("  return s;")
    out.append("}")
    if parsed.objective == "binary":
        convert = f"1.0 / (1.0 + exp(-{_lit(parsed.sigmoid)} * s))"
    elif parsed.objective in OBJECTIVES_EXP:
        convert = "exp(s)"
    else:
        convert = "s"
    out.append("double tuesday_predict(const double* row) {")
    out.append(f"  double s = raw(row); return {convert};")
    out.append("}")
    out.append("void tuesday_predict_rows(const double* rows, long n, double* res) {")
    out.append(f"  for (long r = 0; r < n; ++r) res[r] = tuesday_predict(rows + r * {nf});")
    out.append("}")
    out.append(f"int tuesday_num_features(void) {{ return {nf}; }}")
    return "\n".join(out) + "\n"


def _tree_c(t: int, tree: Tree) -> list[str]:
    lines = [f"static double t{t}(const double* x) {{"]
    if tree.num_leaves <= 1:
        lines.append(f"  return {_lit(tree.leaf_value[0])};")
        lines.append("}")
        return lines
    cats: list[str] = []

    def node(i: int, depth: int) -> None:
        pad = "  " * depth
        if i < 0:
            lines.append(f"{pad}return {_lit(tree.leaf_value[~i])};")
            return
        lines.append(f"{pad}if ({_condition(tree, i, t, cats)}) {{")
        node(tree.left_child[i], depth + 1)
        lines.append(f"{pad}}} else {{")
        node(tree.right_child[i], depth + 1)
        lines.append(f"{pad}}}")

    node(0, 1)
    lines.append("}")
    return cats + lines


def _lit(v: float) -> str:
    """A C literal of the double ``v``: Python's shortest round-trip form."""
    if v != v:
        return "NAN"
    if v in (float("inf"), float("-inf")):
        return "INFINITY" if v > 0 else "-INFINITY"
    return repr(float(v))


def _condition(tree: Tree, i: int, t: int, cats: list[str]) -> str:
    """The C condition that sends a row to the left child of node ``i``."""
    dt = tree.decision_type[i]
    v = f"x[{tree.split_feature[i]}]"
    missing = (dt >> 2) & 3
    default_left = bool(dt & 2)
    if dt & 1:  # categorical
        k = int(tree.threshold[i])
        lo, hi = tree.cat_boundaries[k], tree.cat_boundaries[k + 1]
        words = tree.cat_threshold[lo:hi]
        name = f"c{t}_{i}"
        cats.append(f"static const uint32_t {name}[{max(len(words), 1)}] = "
                    f"{{{', '.join(f'{w}u' for w in words) or '0u'}}};")
        return f"cat_left({v}, {name}, {len(words)})"
    thr = _lit(tree.threshold[i])
    if missing == 2:  # NaN is missing: it goes the default way
        return f"isnan({v}) || {v} <= {thr}" if default_left else f"{v} <= {thr}"
    if missing == 1:  # zero (and NaN, read as zero) is missing
        zero = f"(isnan({v}) || ({v} >= -KZ && {v} <= KZ))"
        return f"{zero} || {v} <= {thr}" if default_left else f"!{zero} && {v} <= {thr}"
    # no missing type: NaN is read as 0.0
    if tree.threshold[i] >= 0.0:
        return f"isnan({v}) || {v} <= {thr}"
    return f"{v} <= {thr}"


# --------------------------------------------------------------------- building


def compiler() -> str | None:
    """The C compiler: ``$CC``, Python's own, or cc/gcc/clang on the PATH."""
    for cand in (os.environ.get("CC"), (sysconfig.get_config_var("CC") or "").split()[:1],
                 "cc", "gcc", "clang"):
        name = cand[0] if isinstance(cand, list) and cand else cand
        if isinstance(name, str) and name and shutil.which(name):
            return shutil.which(name)
    return None


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _private(cache: Path) -> bool:
    """Make the cache directory (mode 0700) and check that it is the user's alone."""
    try:
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = cache.stat()
    except OSError as exc:
        log.warning("cannot use %s for compiled models: %s", cache, exc)
        return False
    if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
        log.warning("not compiling models into %s: it must belong to this user and not be "
                    "writable by others (chmod 700 it, or set TUESDAY_COMPILED_CACHE)", cache)
        return False
    return True


def build(text: str, cache: Path, *, timeout: float = 600.0) -> Path | None:
    """The compiled library of a LightGBM text model, from the cache or built now; None
    when the model is not covered, there is no working C compiler or the cache directory
    is not private."""
    try:
        parsed = parse(text)
    except (Unsupported, KeyError, ValueError, IndexError) as exc:
        log.info("not compiling this model: %s", exc)
        return None
    cc = compiler()
    if cc is None:
        log.info("no C compiler found: predictions use LightGBM's C API")
        return None
    if not _private(cache):
        return None
    key = hashlib.sha256(f"{CODEGEN_VERSION}\0{cc}\0{' '.join(CFLAGS)}\0{text}".encode()
                         ).hexdigest()[:32]
    lib = cache / f"{key}.so"
    stamp = cache / f"{key}.so.sha256"
    with open(cache / f"{key}.lock", "w") as lock:
        _lock(lock)  # one build per model at a time, across processes
        if lib.exists() and stamp.exists():
            if stamp.read_text().strip() == _digest(lib):
                return lib
            log.warning("compiled model %s does not match its recorded sha256; rebuilding",
                        lib)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            Path(tmp, "model.c").write_text(c_source(parsed))
            try:
                done = subprocess.run([cc, *CFLAGS, "-o", "model.so", "model.c", "-lm"],
                                      cwd=tmp, capture_output=True, text=True,
                                      timeout=timeout, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                log.warning("compiling the model failed: %s", exc)
                return None
            if done.returncode != 0:
                log.warning("compiling the model failed: %s", done.stderr[-2000:])
                return None
            out = Path(tmp, "model.so")
            Path(tmp, "stamp").write_text(_digest(out) + "\n")
            os.replace(out, lib)
            os.replace(Path(tmp, "stamp"), stamp)
    return lib


def _lock(f: Any) -> None:
    try:
        import fcntl
    except ImportError:  # not on this platform: builds may overlap, each one is checked
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)


# ----------------------------------------------------------------------- loading


def _open_checked(lib: Path) -> ctypes.PyDLL:
    """Load the library whose bytes match its recorded sha256: the bytes are hashed from
    an open file, and the file loaded must be that same file (device and inode, before
    and after loading). Loading by a ``/proc/self/fd`` name would not do: the dynamic
    loader takes an already loaded library of the same name for the new one."""
    stamp = Path(f"{lib}.sha256")
    with open(lib, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
        if not stamp.exists() or stamp.read_text().strip() != digest:
            raise ValueError(f"{lib} does not match its recorded sha256")
        opened = os.fstat(f.fileno())
        same = (opened.st_dev, opened.st_ino)
        if (os.stat(lib).st_dev, os.stat(lib).st_ino) != same:
            raise ValueError(f"{lib} was replaced while it was being checked")
        dll = ctypes.PyDLL(str(lib))
        if (os.stat(lib).st_dev, os.stat(lib).st_ino) != same:
            raise ValueError(f"{lib} was replaced while it was being loaded")
    return dll


class Compiled:
    """A compiled model loaded for prediction (the GIL is kept: a call takes
    microseconds, less than releasing and re-taking it)."""

    def __init__(self, lib: Path, num_features: int) -> None:
        self.path = lib
        self._dll = _open_checked(lib)
        if int(self._dll.tuesday_num_features()) != num_features:
            raise ValueError(f"{lib} was built for another number of features")
        self.ncol = num_features
        self._one = self._dll.tuesday_predict
        self._one.restype = ctypes.c_double  # no argtypes: the address is passed as is
        self._rows = self._dll.tuesday_predict_rows
        self._rows.argtypes = (ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p)
        self._rows.restype = None
        # one input buffer, filled per call under a lock (cheaper than a new array)
        self._buf = (ctypes.c_double * num_features)()
        self._addr = ctypes.c_void_p(ctypes.addressof(self._buf))
        self._lock = threading.Lock()

    def predict_one(self, values: list[float]) -> float:
        """One row given as a sequence of ``ncol`` numbers (NaN for missing)."""
        if len(values) != self.ncol:
            raise ValueError(f"expected {self.ncol} feature values, got {len(values)}")
        with self._lock:
            self._buf[:] = values  # type: ignore[assignment]  # ctypes takes floats
            return float(self._one(self._addr))

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.ncol:
            raise ValueError(f"expected rows of {self.ncol} features, got {x.shape}")
        out = np.empty(x.shape[0], dtype=np.float64)
        self._rows(x.ctypes.data, x.shape[0], out.ctypes.data)
        return out

    def check(self, booster: Any, text: str, *, seed: int = 0) -> int:
        """Compare with LightGBM on probe rows; the number of rows that differ in any
        bit (0 means identical)."""
        rows = probe_rows(parse(text), seed=seed)
        want = np.asarray(booster.predict(rows, num_threads=1), dtype=np.float64)
        got = self.predict(rows)
        return int(np.count_nonzero(want.view(np.uint64) != got.view(np.uint64)))


def probe_rows(parsed: Parsed, *, n: int = 2_000, seed: int = 0) -> np.ndarray:
    """Rows that reach both sides of the splits: each value is drawn from the model's
    own thresholds (exactly on one, or just either side), zero, +-1e-36 (read as zero),
    NaN, or a wide random value."""
    rng = np.random.default_rng(seed)
    nf = parsed.num_features
    per_feature: list[list[float]] = [[] for _ in range(nf)]
    cats: list[set[int]] = [set() for _ in range(nf)]
    for tree in parsed.trees:
        for i, f in enumerate(tree.split_feature):
            if tree.decision_type[i] & 1:
                k = int(tree.threshold[i])
                words = tree.cat_threshold[tree.cat_boundaries[k]:tree.cat_boundaries[k + 1]]
                cats[f].update(w * 32 + b for w, word in enumerate(words)
                               for b in range(32) if word >> b & 1)
            else:
                per_feature[f].append(tree.threshold[i])
    x = np.empty((n, nf))
    for f in range(nf):
        thr = np.asarray(per_feature[f] or [0.0])
        pick = thr[rng.integers(0, len(thr), n)]
        choice = rng.integers(0, 9, n)
        col = np.where(choice == 0, pick, np.where(choice == 1, np.nextafter(pick, -np.inf),
                       np.where(choice == 2, np.nextafter(pick, np.inf), pick)))
        col = np.where(choice == 3, 0.0, col)
        col = np.where(choice == 4, rng.choice([1e-36, -1e-36, -0.0], n), col)
        col = np.where(choice == 5, np.nan, col)
        col = np.where(choice == 6, rng.normal(0, 1, n) * np.abs(thr).max() * 2, col)
        if cats[f]:
            cat_vals = np.asarray([*sorted(cats[f]), -1, 0, 1, 2, 31, 32, 33, 1000],
                                  dtype=float)
            col = np.where(choice >= 7, cat_vals[rng.integers(0, len(cat_vals), n)] +
                           rng.choice([0.0, 0.5, -0.5], n), col)
        x[:, f] = col
    return x


def cache_dir() -> Path:
    """Where compiled models are kept: ``$TUESDAY_COMPILED_CACHE``, else
    ``$XDG_CACHE_HOME/tuesday/compiled`` (``~/.cache/tuesday/compiled``). Shared by
    workspaces and server workers: a library is named by the hash of its source."""
    env = os.environ.get("TUESDAY_COMPILED_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tuesday" / "compiled"


def enabled() -> bool:
    """``TUESDAY_COMPILED=off`` (or 0/false/no) turns compiled inference off."""
    return os.environ.get("TUESDAY_COMPILED", "on").strip().lower() not in (
        "off", "0", "false", "no")


def compile_checked(booster: Any, text: str | None = None, *,
                    cache: Path | None = None) -> Compiled | None:
    """The compiled model of a LightGBM booster, checked against LightGBM on probe rows;
    None when it cannot be built or it differs in any bit (then logged)."""
    try:
        text = text or str(booster.model_to_string(num_iteration=-1))
        lib = build(text, cache or cache_dir())
        if lib is None:
            return None
        got = Compiled(lib, int(booster.num_feature()))
        bad = got.check(booster, text)
        if bad:
            log.warning("the compiled model differs from LightGBM on %d of the probe rows; "
                        "LightGBM's C API answers instead", bad)
            return None
        return got
    except Exception:
        log.warning("compiling a model failed; LightGBM's C API answers instead",
                    exc_info=True)
        return None


def compile_in_background(booster: Any, done: Any) -> threading.Thread:
    """Build and check in a daemon thread; ``done(compiled)`` is called with the result
    only when there is one."""

    def run() -> None:
        got = compile_checked(booster)
        if got is not None:
            done(got)

    thread = threading.Thread(target=run, daemon=True, name="tuesday-compile")
    thread.start()
    return thread
