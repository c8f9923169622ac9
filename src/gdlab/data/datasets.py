"""Data for the lab: built-in sets and a user's CSV/NPZ files, split and standardized.

``load_data(source)`` takes a built-in name (``BUILTIN``) or a path to a ``.csv`` / ``.npz``
file and returns a :class:`Dataset`: a seeded train/test split (stratified for classification
where every class allows it), features standardized with the training part's statistics,
and the task (binary, multiclass or regression) inferred from the labels unless given.

Lower-level pieces: ``read_csv`` / ``read_npz`` read a file into ``(X, labels, feature_names)``;
``from_arrays`` turns in-memory arrays into a Dataset; ``standardize`` is the feature scaling.

Every bad input raises ``ValueError`` with a one-line message saying what was wrong and what is
allowed. Files are never unpickled.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BUILTIN = ("moons", "circles", "digits", "breast-cancer", "iris")
TASKS = ("binary", "multiclass", "regression")

#: Integer labels with at most this many distinct values are classes (3 or more: multiclass).
MAX_CLASSES = 20
#: Integer labels that are exactly 0, 1, ..., k-1 (at least 2 examples per class on average)
#: are class indices up to this many classes.
MAX_INDEXED_CLASSES = 1000

_ALIASES = {"breast_cancer": "breast-cancer", "breastcancer": "breast-cancer",
            "cancer": "breast-cancer"}


@dataclass
class Dataset:
    """A train/test split ready to train on. Rows are examples.

    task: "binary" (Y in {0, 1}, shape (m, 1)), "multiclass" (Y class indices, shape (m,)),
    or "regression" (Y float, shape (m, n_y)). ``n_outputs`` is n_y of the output layer.
    """

    name: str
    X_train: np.ndarray
    Y_train: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    task: str
    n_outputs: int
    feature_names: list[str]
    class_names: list[str] | None = None

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def output(self) -> str:
        """The output activation the task implies: sigmoid, softmax or linear."""
        return {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}[self.task]


# --------------------------------------------------------------------------- helpers


def _one_line(text) -> str:
    """Collapse a (possibly multi-line, possibly huge) message part to one short line."""
    text = " ".join(str(text).split())
    return text if len(text) <= 80 else text[:77] + "..."


def _show(value) -> str:
    """repr of a cell for a message, kept to one short line."""
    return repr(_one_line(value)) if isinstance(value, str) else _one_line(repr(value))


def _list(names, limit: int = 12) -> str:
    names = [_one_line(n) for n in names]
    if len(names) > limit:
        return ", ".join(names[:limit]) + f", ... ({len(names) - limit} more)"
    return ", ".join(names)


def _unknown_message(source) -> str:
    return (f"unknown data {_show(str(source))}: give one of {', '.join(BUILTIN)}, "
            f"or a path to a .csv or .npz file")


def _check_task(task):
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(map(repr, TASKS))} or None "
                         f"(infer it from the labels), got {_show(task)}")


def _check_test_size(test_size):
    ok = (isinstance(test_size, int | float | np.floating | np.integer)
          and not isinstance(test_size, bool) and math.isfinite(test_size)
          and 0 <= test_size < 1)
    if not ok:
        raise ValueError(f"test_size must be a fraction in [0, 1), got {_show(test_size)}")
    return float(test_size)


def _check_seed(seed):
    if seed is None:
        return None
    if (isinstance(seed, bool) or not isinstance(seed, int | np.integer)
            or not 0 <= seed < 2**32):
        raise ValueError(f"seed must be an integer in [0, 2**32) or None, got {_show(seed)}")
    return int(seed)


def _check_n_samples(n_samples):
    if isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2, got {_show(n_samples)}")
    return int(n_samples)


def _first_non_finite(a: np.ndarray) -> tuple | None:
    """The index of the first NaN or infinite entry of ``a`` (in row-major order), or None."""
    bad = ~np.isfinite(a)
    return tuple(int(i) for i in np.argwhere(bad)[0]) if bad.any() else None


def _check_finite_cells(values, path, header, rows, lines, cols, what: str, rule: str) -> None:
    """A ValueError naming the cell (line and column) of the first NaN or infinite entry of
    ``values``, the numbers parsed from the columns ``cols`` of ``rows``."""
    bad = _first_non_finite(values)
    if bad is not None:
        i, k = bad
        raise ValueError(f"non-finite {what} {_show(rows[i][cols[k]])} at line {lines[i]}, "
                         f"column {_show(header[cols[k]])} of {path}: {rule}")


def _parse_float(cell: str):
    try:
        return float(cell)
    except ValueError:
        return None


# --------------------------------------------------------------------------- readers


def _read_text(path: Path) -> str:
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise ValueError(f"cannot read {path}: it is not UTF-8 text; a .csv file must be "
                         f"plain text with a header row") from None
    except OSError as e:
        raise ValueError(f"cannot read {path}: {_one_line(e.strerror or e)}") from None
    if "\x00" in text:
        raise ValueError(f"cannot read {path}: it holds binary data (NUL bytes); a .csv file "
                         f"must be plain text with a header row") from None
    return text


def _delimiter(text: str) -> str:
    """Comma, unless the header line has none and uses tabs or semicolons instead."""
    for line in text.splitlines():
        if line.strip():
            if "," in line:
                return ","
            if "\t" in line:
                return "\t"
            if ";" in line:
                return ";"
            return ","
    return ","


def _target_columns(target, header: list[str], path) -> list[int]:
    if target is None:
        return [len(header) - 1]
    names = [target] if isinstance(target, str) else target
    if (not isinstance(names, list | tuple) or not names
            or not all(isinstance(t, str) for t in names)):
        raise ValueError(f"target must be a column name (or a list of column names), "
                         f"got {_show(target)}")
    cols = []
    for t in names:
        if t not in header:
            raise ValueError(f"no column {_show(t)} in {path}: its columns are "
                             f"{_list(header, 30)}")
        cols.append(header.index(t))
    if len(set(cols)) != len(cols):
        raise ValueError(f"target names a column twice: {_show(target)}")
    if len(cols) == len(header):
        raise ValueError(f"target {_show(target)} leaves no feature columns in {path}: "
                         f"at least one column must be a feature")
    return cols


def read_csv(path, target=None):
    """Read a CSV file with a header row into ``(X, labels, feature_names)``.

    ``target`` names the label column (a list of names for several regression outputs);
    by default the last column. Feature cells must be finite numbers. The target column may
    hold numbers or text (class labels), not both. ``X`` is float64 (m, n_x); ``labels`` is
    float64 of shape (m,) (one target) or (m, k), or an array of strings (m,). Blank lines are
    skipped; the delimiter is a comma, or a tab/semicolon when the header has no comma.
    """
    path = Path(path)
    header, rows, lines = _csv_rows(path)
    t_cols = _target_columns(target, header, path)
    f_cols = [j for j in range(len(header)) if j not in t_cols]
    feature_names = [header[j] for j in f_cols]
    X = _csv_features(path, header, rows, lines, f_cols)
    labels = _csv_labels(path, header, rows, lines, t_cols)
    return X, labels, feature_names


def _csv_rows(path: Path):
    """(header, rows of stripped cells, each row's line number) of a CSV file with a header row
    of unique names and at least one row of data; blank lines skipped."""
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(text))
    header = None
    rows, lines = [], []
    try:
        for row in reader:
            row = [cell.strip() for cell in row]
            if not any(row):
                continue  # blank line, or a row of empty cells
            if header is None:
                header = row
                header_line = reader.line_num
                continue
            if len(row) != len(header):
                raise ValueError(f"line {reader.line_num} of {path} has {len(row)} fields, "
                                 f"expected {len(header)} like the header (line {header_line})")
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as e:
        raise ValueError(f"cannot parse {path} as CSV at line {reader.line_num}: "
                         f"{_one_line(e)}") from None
    if header is None:
        raise ValueError(f"{path} is empty: a .csv file needs a header row naming the columns "
                         f"and at least 2 rows of data")
    if all(_parse_float(h) is not None for h in header):
        raise ValueError(f"the first row of {path} ({_list(header, 6)}) looks like data, not a "
                         f"header: the file needs a header row naming the columns")
    header = [h if h else f"column{j + 1}" for j, h in enumerate(header)]
    seen = {}
    for j, h in enumerate(header):
        if h in seen:
            raise ValueError(f"column name {_show(h)} appears twice in the header of {path} "
                             f"(columns {seen[h] + 1} and {j + 1}): names must be unique")
        seen[h] = j
    if len(header) < 2:
        raise ValueError(f"{path} has a single column {_show(header[0])}: it needs at least 2 "
                         f"(features and a target)")
    if not rows:
        raise ValueError(f"{path} has a header but no data rows")
    return header, rows, lines


def _csv_features(path: Path, header, rows, lines, f_cols) -> np.ndarray:
    """The feature columns ``f_cols`` as float64 (m, n_x); finite numbers, or a ValueError
    naming the line and column."""
    X = np.empty((len(rows), len(f_cols)), dtype=np.float64)
    for i, row in enumerate(rows):
        try:
            X[i] = [float(row[j]) for j in f_cols]
        except ValueError:
            for j in f_cols:
                if _parse_float(row[j]) is None:
                    what = "missing value" if row[j] == "" else f"non-numeric value {_show(row[j])}"
                    raise ValueError(f"{what} at line {lines[i]}, column {_show(header[j])} of "
                                     f"{path}: feature columns must hold numbers") from None
            raise
    _check_finite_cells(X, path, header, rows, lines, f_cols, "value",
                        "features must be finite numbers")
    return X


def _csv_labels(path: Path, header, rows, lines, t_cols) -> np.ndarray:
    """The target columns ``t_cols``: float64 (m,) or (m, k), or strings (m,) (text labels of
    one column); all numbers or all text."""
    cells = [[row[j] for j in t_cols] for row in rows]
    for i, c in enumerate(cells):
        for cell, j in zip(c, t_cols, strict=True):
            if cell == "":
                raise ValueError(f"missing target value at line {lines[i]}, column "
                                 f"{_show(header[j])} of {path}")
    parsed = [[_parse_float(cell) for cell in c] for c in cells]
    numeric = [all(v is not None for v in p) for p in parsed]
    if all(numeric):
        labels = np.array(parsed, dtype=np.float64)
        _check_finite_cells(labels, path, header, rows, lines, t_cols, "target value",
                            "labels must be finite")
        if len(t_cols) == 1:
            labels = labels[:, 0]
    elif len(t_cols) > 1:
        i = numeric.index(False)
        raise ValueError(f"non-numeric target value at line {lines[i]} of {path}: several "
                         f"target columns must all hold numbers (regression)")
    elif any(numeric):
        i, k = numeric.index(True), numeric.index(False)
        raise ValueError(f"target column {_show(header[t_cols[0]])} of {path} mixes numbers "
                         f"(line {lines[i]}: {_show(cells[i][0])}) and text (line {lines[k]}: "
                         f"{_show(cells[k][0])}): labels must be all numbers or all text")
    else:
        labels = np.array([c[0] for c in cells], dtype=str)
    return labels


def read_npz(path, target=None):
    """Read an ``.npz`` archive with arrays ``X`` and ``Y`` (or ``y``; ``target`` names another
    key) into ``(X, labels, feature_names)``. Never unpickles. A 1-D ``X`` is one feature
    column; an ``X`` with more dimensions is flattened to one row per example. An optional
    string array ``feature_names`` names the columns."""
    path = Path(path)
    if target is not None and not isinstance(target, str):
        raise ValueError(f"target must be the name of an array in {path}, got {_show(target)}")
    try:
        with open(path, "rb") as f:  # our own handle: np.load leaks its own on a bad zip
            X, labels, names = _read_npz_arrays(f, path, target)
    except OSError as e:
        raise ValueError(f"cannot read {path}: {_one_line(e.strerror or e)}") from None
    X = _as_features(X, path)
    labels = _as_labels(labels, X.shape[0], path, X.shape[1])
    n_x = X.shape[1]
    if names is None:
        feature_names = [f"x{j + 1}" for j in range(n_x)]
    else:
        if names.ndim != 1 or names.dtype.kind not in "US" or len(names) != n_x:
            raise ValueError(f"feature_names in {path} must be {n_x} strings, one per column "
                             f"of X, got an array of shape {names.shape} and dtype {names.dtype}")
        feature_names = [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)
                         for n in names.tolist()]
    return X, labels, feature_names


def _read_npz_arrays(f, path, target):
    save_hint = "save it with np.savez(path, X=..., Y=...)"
    magic = f.read(6)
    f.seek(0)
    if magic.startswith(b"\x93NUMPY"):
        raise ValueError(f"{path} holds a single array (.npy data), not an .npz archive: "
                         f"{save_hint}")
    if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise ValueError(f"{path} is not an .npz archive (a zip of .npy arrays): {save_hint}")
    try:
        archive = np.load(f, allow_pickle=False)
    except Exception as e:  # BadZipFile, truncated file, ...
        raise ValueError(f"cannot read {path} as an .npz archive ({_one_line(e)}): "
                         f"{save_hint}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} is not an .npz archive: {save_hint}")
    with archive:
        keys = list(archive.files)
        x_key = "X" if "X" in keys else ("x" if "x" in keys else None)
        y_key = target if target is not None else next((k for k in ("Y", "y") if k in keys),
                                                       None)
        if x_key is None or y_key not in keys:
            missing = "X" if x_key is None else (repr(target) if target else "Y (or y)")
            raise ValueError(f"{path} has no {missing} array (it has: "
                             f"{_list(keys) if keys else 'no arrays'}); {save_hint}")
        try:
            X, labels = archive[x_key], archive[y_key]
            names = archive["feature_names"] if "feature_names" in keys else None
        except Exception as e:  # object arrays need pickle; corrupt members
            raise ValueError(f"cannot read the arrays of {path} ({_one_line(e)}): X and Y must "
                             f"be plain numeric (or string label) arrays") from None
    return X, labels, names


def _as_features(X, where) -> np.ndarray:
    """X as float64 (m, n_x): 1-D is one column, more dimensions are flattened per row."""
    X = np.asarray(X)
    if X.dtype.kind == "c":
        raise ValueError(f"X in {where} must hold real numbers, got complex dtype {X.dtype}")
    if X.dtype.kind not in "biuf":
        try:
            X = X.astype(np.float64)
        except (ValueError, TypeError):
            raise ValueError(f"X in {where} must hold numbers, got dtype {X.dtype}") from None
    if X.ndim == 0:
        raise ValueError(f"X in {where} must be an array of examples (rows), got a scalar")
    if X.ndim == 1:
        X = X[:, None]
    elif X.ndim > 2:
        X = X.reshape(X.shape[0], -1)
    X = X.astype(np.float64)
    if X.shape[1] == 0:
        raise ValueError(f"X in {where} has no feature columns (shape {X.shape})")
    bad = _first_non_finite(X)
    if bad is not None:
        i, j = bad
        raise ValueError(f"X in {where} has a non-finite value ({X[i, j]}) at row {i}, column "
                         f"{j} (counting from 0): features must be finite numbers")
    return X


def _as_labels(labels, m: int, where, n_x: int = 0) -> np.ndarray:
    """Labels as float64 (m,) / (m, k) or a string array (m,), with their length checked."""
    labels = np.asarray(labels)
    kind = labels.dtype.kind
    if kind == "S":
        labels = np.char.decode(labels, "utf-8", "replace")
    elif kind == "O":
        flat = labels.ravel().tolist()
        if flat and all(isinstance(v, str) for v in flat):
            labels = labels.astype(str)
        else:
            try:
                labels = labels.astype(np.float64)
            except (ValueError, TypeError):
                raise ValueError(f"Y in {where} must hold numbers or text class labels, got "
                                 f"values like {_show(flat[0]) if flat else 'none'}") from None
    elif kind == "c":
        raise ValueError(f"Y in {where} must hold real numbers or text labels, got complex "
                         f"dtype {labels.dtype}")
    elif kind not in "biuf" and labels.dtype.kind != "U":
        raise ValueError(f"Y in {where} must hold numbers or text class labels, got dtype "
                         f"{labels.dtype}")
    if labels.ndim == 0:
        raise ValueError(f"Y in {where} must hold one label per example, got a scalar")
    if labels.ndim == 2 and labels.shape[0] == 1 and labels.shape[1] == m and m > 1:
        labels = labels[0]  # the course's (1, m) row of labels
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim > 2:
        raise ValueError(f"Y in {where} must be 1-D (m,) or 2-D (m, n_y), got shape "
                         f"{labels.shape}")
    if labels.shape[0] != m:
        hint = ""
        if labels.shape[0] == n_x and labels.shape[0] > 1:
            hint = " (X looks transposed, one column per example: save X.T)"
        raise ValueError(f"X has {m} rows (examples) but Y has {labels.shape[0]} in {where}: "
                         f"they must match, one label per row of X{hint}")
    if labels.dtype.kind == "U":
        if labels.ndim != 1:
            raise ValueError(f"text labels in {where} must be 1-D (one label per example), "
                             f"got shape {labels.shape}")
        return labels
    labels = labels.astype(np.float64)
    bad = _first_non_finite(labels)
    if bad is not None:
        i = bad[0]
        raise ValueError(f"Y in {where} has a non-finite label ({labels.reshape(m, -1)[i]}) at "
                         f"row {i} (counting from 0): labels must be finite")
    return labels


# --------------------------------------------------------------------------- task and labels


def _class_name(v) -> str:
    if isinstance(v, str | np.str_):
        return str(v)
    v = float(v)
    return str(int(v)) if v.is_integer() else repr(v)


def _is_one_hot(labels: np.ndarray) -> bool:
    return (labels.ndim == 2 and labels.shape[1] >= 2 and bool(np.isin(labels, (0, 1)).all())
            and bool((labels.sum(axis=1) == 1).all()))


def _encode(labels, task, class_names, where):
    """(Y, task, n_outputs, class_names) from raw labels; checks ``task`` if it is given."""
    text = labels.dtype.kind == "U"
    if task == "regression":
        if text:
            raise ValueError(f"task='regression' needs numeric targets, but the labels in "
                             f"{where} are text (like {_show(labels[0])})")
        Y = labels.reshape(labels.shape[0], -1).astype(np.float64)
        return Y, task, Y.shape[1], None

    if class_names is not None:  # class indices 0..k-1 with known names (built-in sets)
        k = len(class_names)
        if (text or labels.ndim != 1
                or not np.all((labels == np.round(labels)) & (labels >= 0) & (labels < k))):
            raise ValueError(f"with class_names, the labels of {where} must be class indices "
                             f"0..{k - 1}, one per example")
        idx = labels.astype(np.int64)
        inferred = "binary" if k == 2 else "multiclass"
        return _classes_as(task or inferred, idx, list(class_names), where)

    if not text and labels.ndim == 2:
        if _is_one_hot(labels):
            k = labels.shape[1]
            idx = labels.argmax(axis=1).astype(np.int64)
            names = [str(j) for j in range(k)]
            return _classes_as(task or ("binary" if k == 2 else "multiclass"), idx, names, where)
        if task is not None:
            raise ValueError(f"task={task!r} needs one label per example (or one-hot rows), "
                             f"but Y in {where} has {labels.shape[1]} columns that are not "
                             f"one-hot; use task='regression' for several outputs")
        return labels.astype(np.float64), "regression", labels.shape[1], None

    integral = text or bool(np.all(labels == np.round(labels)))
    if not integral:
        if task is not None:
            example = labels[labels != np.round(labels)][0]
            raise ValueError(f"task={task!r} needs integer or text class labels, but the labels "
                             f"in {where} include non-integer values like {example!r}; use "
                             f"task='regression'")
        return labels.reshape(-1, 1).astype(np.float64), "regression", 1, None

    values, idx = np.unique(labels, return_inverse=True)
    idx = idx.reshape(-1).astype(np.int64)
    names = [_class_name(v) for v in values]
    k = len(values)
    if task is None:
        if k == 1:
            raise ValueError(f"the labels in {where} have a single value ({names[0]}): "
                             f"classification needs at least 2 classes; pass "
                             f"task='regression' to fit a constant")
        if k == 2:
            task = "binary"
        elif text or k <= MAX_CLASSES:
            task = "multiclass"
        elif (k <= MAX_INDEXED_CLASSES and values[0] == 0 and values[-1] == k - 1
              and len(labels) >= 2 * k):
            task = "multiclass"  # exactly the class indices 0..k-1, 2+ examples per class
        else:
            return labels.reshape(-1, 1).astype(np.float64), "regression", 1, None
    return _classes_as(task, idx, names, where)


def _classes_as(task, idx, names, where):
    k = len(names)
    present = np.unique(idx)
    if task == "binary":
        if k != 2:
            raise ValueError(f"task='binary' needs exactly 2 classes, but the labels in {where} "
                             f"have {k}: {_list(names)}")
        return idx.astype(np.float64).reshape(-1, 1), task, 1, names
    if task == "multiclass":
        if len(present) < 2:
            raise ValueError(f"task='multiclass' needs at least 2 classes, but the labels in "
                             f"{where} have {len(present)}: {_list(names)}")
        return idx, task, k, names
    raise AssertionError(task)


# --------------------------------------------------------------------------- split and scale


def standardize(X_train: np.ndarray, X_test: np.ndarray | None = None):
    """Standardize features with the training part's statistics:
    ``(X - mean) / std``, mean and std (ddof=0) of X_train; a constant column gets std 1.

    Returns ``(X_train, X_test, mean, std)`` (X_test None if not given).
    """
    X_train = np.asarray(X_train, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        mean = X_train.mean(axis=0)
        std = X_train.std(axis=0)
        std = np.where(std == 0, 1.0, std)
        out_train = (X_train - mean) / std
        out_test = None if X_test is None else (np.asarray(X_test, np.float64) - mean) / std
    finite = (np.isfinite(mean).all() and np.isfinite(std).all() and np.isfinite(out_train).all()
              and (out_test is None or np.isfinite(out_test).all()))
    if not finite:
        raise ValueError(f"features too large to standardize (|x| up to "
                         f"{np.abs(X_train).max():.3g}): rescale them or pass standardize=False")
    return out_train, out_test, mean, std


_standardize = standardize  # from_arrays has an argument of the same name


def _split(m, n_test, strata, seed):
    from sklearn.model_selection import train_test_split

    index = np.arange(m)
    if n_test == 0:
        return index, index[:0]
    stratify = None
    if strata is not None:
        counts = np.bincount(strata)
        counts = counts[counts > 0]
        k = len(counts)
        if counts.min() >= 2 and n_test >= k and m - n_test >= k:
            stratify = strata
    if stratify is not None:
        try:
            return train_test_split(index, test_size=n_test, random_state=seed,
                                    stratify=stratify)
        except ValueError:
            pass  # a class too small for this split: fall back to a plain shuffled split
    return train_test_split(index, test_size=n_test, random_state=seed)


def from_arrays(X, y, *, name: str = "arrays", feature_names=None, task: str | None = None,
                test_size: float = 0.25, seed: int | None = 0, standardize: bool = True,
                class_names=None) -> Dataset:
    """A Dataset from in-memory arrays: X (m, n_x) and labels y (m,) or (m, n_y).

    The task is inferred from the labels unless given (see ``load_data``). ``class_names``
    declares y as class indices 0..k-1 with those names.
    """
    _check_task(task)
    test_size = _check_test_size(test_size)
    seed = _check_seed(seed)
    X = _as_features(X, name)
    m = X.shape[0]
    labels = _as_labels(y, m, name, X.shape[1])
    if feature_names is None:
        feature_names = [f"x{j + 1}" for j in range(X.shape[1])]
    feature_names = [str(f) for f in feature_names]
    if len(feature_names) != X.shape[1]:
        raise ValueError(f"feature_names has {len(feature_names)} names but X has "
                         f"{X.shape[1]} columns")
    if m < 2:
        raise ValueError(f"{name} has {m} example{'s' if m != 1 else ''}: need at least 2")
    Y, task, n_outputs, class_names = _encode(labels, task, class_names, name)
    n_test = math.ceil(test_size * m)
    if n_test >= m:
        raise ValueError(f"test_size={test_size} leaves no training examples out of {m}: "
                         f"use a smaller test_size")
    strata = None
    if task != "regression":
        strata = Y.reshape(-1).astype(np.int64)
    train, test = _split(m, n_test, strata, seed)
    X_train, X_test = X[train], X[test]
    if standardize:
        X_train, X_test, _, _ = _standardize(X_train, X_test)
    return Dataset(name=name, X_train=X_train, Y_train=Y[train], X_test=X_test, Y_test=Y[test],
                   task=task, n_outputs=int(n_outputs), feature_names=feature_names,
                   class_names=class_names)



# --------------------------------------------------------------------------- built-ins


def _builtin(name: str, n_samples: int, seed):
    """(X, y, feature_names, class_names) of a built-in set."""
    import sklearn.datasets as skd

    if name in ("moons", "circles"):
        n_samples = _check_n_samples(n_samples)
        rng = np.random.RandomState(seed)
        if name == "moons":
            X, y = skd.make_moons(n_samples=n_samples, noise=0.2, random_state=rng)
        else:
            X, y = skd.make_circles(n_samples=n_samples, noise=0.1, factor=0.5, random_state=rng)
        return X, y, ["x1", "x2"], ["0", "1"]
    loader = {"digits": skd.load_digits, "breast-cancer": skd.load_breast_cancer,
              "iris": skd.load_iris}[name]
    bunch = loader()
    return (bunch.data, bunch.target, [str(f) for f in bunch.feature_names],
            [str(c) for c in bunch.target_names])


def _builtin_name(source) -> str | None:
    if not isinstance(source, str):
        return None
    key = source.strip().lower()
    key = _ALIASES.get(key, key)
    return key if key in BUILTIN else None


def load_data(source, *, target=None, task: str | None = None, test_size: float = 0.25,
              seed: int | None = 0, n_samples: int = 1000, standardize: bool = True) -> Dataset:
    """Load a built-in set or a ``.csv`` / ``.npz`` file as a seeded, standardized split.

    source: one of ``BUILTIN`` (moons, circles: ``n_samples`` generated examples, noise seeded
        by ``seed``; digits, breast-cancer, iris: scikit-learn's bundled copies, ``n_samples``
        does not apply), or a path to a ``.csv`` file (header row; ``target`` names the label
        column, default the last) or a ``.npz`` archive (arrays ``X`` and ``Y`` or ``y``;
        ``target`` names another label array).
    task: "binary", "multiclass" or "regression"; None infers it from the labels: 2 distinct
        integer or text labels are binary; text labels, or 3..20 distinct integers, or the
        class indices 0..k-1 (k <= 1000, m >= 2k) are multiclass; one-hot rows are classes;
        anything else is regression. An explicit task is checked against the labels.
    test_size: the fraction of examples held out, in [0, 1) (ceil(test_size·m) examples);
        the split is stratified by class where every class has enough examples.
    standardize: scale each feature with the training part's mean and std (std 0 → 1).

    Raises ValueError with a one-line message for any bad input.
    """
    _check_task(task)
    _check_test_size(test_size)
    _check_seed(seed)
    if not isinstance(standardize, bool | np.bool_):
        raise ValueError(f"standardize must be True or False, got {_show(standardize)}")
    options = dict(task=task, test_size=test_size, seed=seed, standardize=bool(standardize))

    name = _builtin_name(source)
    if name is not None:
        if target is not None:
            raise ValueError(f"target applies to .csv and .npz files, not the built-in set "
                             f"{name!r}")
        X, y, feature_names, class_names = _builtin(name, n_samples, seed)
        return from_arrays(X, y, name=name, feature_names=feature_names,
                           class_names=class_names, **options)

    if not isinstance(source, str | os.PathLike):
        raise ValueError(_unknown_message(source))
    path = Path(source).expanduser()
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".npz"):
        if path.is_dir():
            raise ValueError(f"{path} is a directory: give one of {', '.join(BUILTIN)}, or a "
                             f"path to a .csv or .npz file")
        if path.exists():
            raise ValueError(f"unsupported file type {suffix or '(no extension)'!r} for {path}: "
                             f"give a .csv or .npz file")
        raise ValueError(_unknown_message(source))
    if not path.exists():
        raise ValueError(f"no such file: {path} (give one of {', '.join(BUILTIN)}, or a path "
                         f"to an existing .csv or .npz file)")
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a {suffix} file")
    reader = read_csv if suffix == ".csv" else read_npz
    X, labels, feature_names = reader(path, target)
    return from_arrays(X, labels, name=path.name, feature_names=feature_names, **options)


def describe(dataset: Dataset) -> str:
    """One line: name, train/test sizes, features, task and classes (or outputs)."""
    d = dataset
    line = (f"{d.name}: {d.X_train.shape[0]} train / {d.X_test.shape[0]} test examples, "
            f"{d.n_features} feature{'s' if d.n_features != 1 else ''}, {d.task}")
    if d.class_names:
        line += f", {len(d.class_names)} classes ({_list(d.class_names, 10)})"
    elif d.task == "regression":
        line += f", {d.n_outputs} output{'s' if d.n_outputs != 1 else ''}"
    return line


def user_data(text, *, target=None, seed: int = 0):
    """The data ``--data`` names for a model of the user's: what a SPEC (path/to/file.py:function)
    returns, or one of gdlab's sets (a name or CSV/NPZ file) as ((X, Y), (X_test, Y_test))
    tensors, the test part its validation data."""
    import torch

    from .._spec import call_spec, is_spec

    if is_spec(text):
        return call_spec(text, "--data")
    d = load_data(text, target=target, seed=seed)
    return ((torch.as_tensor(d.X_train), torch.as_tensor(d.Y_train)),
            (torch.as_tensor(d.X_test), torch.as_tensor(d.Y_test)))  # (fit: the model's dtype)
