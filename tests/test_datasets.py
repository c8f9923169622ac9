"""gdlab.data.datasets: built-in sets, CSV/NPZ files, task inference, split, standardization and
one-line errors for every bad input."""

from __future__ import annotations

import csv
import os
import re
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gdlab.data.datasets import (
    BUILTIN,
    Dataset,
    describe,
    from_arrays,
    load_data,
    read_csv,
    read_npz,
    standardize,
)

# --------------------------------------------------------------------------- helpers


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        if header is not None:
            w.writerow(header)
        w.writerows(rows)
    return path


def write_text(path, text):
    path.write_text(text)
    return path


def raises(match, source, **kw):
    """load_data(source) raises a one-line ValueError matching ``match``."""
    with pytest.raises(ValueError, match=match) as info:
        load_data(source, **kw)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def check_shapes(d: Dataset, m: int, n_x: int):
    assert d.X_train.dtype == np.float64 and d.X_test.dtype == np.float64
    assert d.X_train.shape[0] + d.X_test.shape[0] == m
    assert d.X_train.shape[1] == d.X_test.shape[1] == n_x == d.n_features
    assert len(d.feature_names) == n_x
    assert d.Y_train.shape[0] == d.X_train.shape[0] and d.Y_test.shape[0] == d.X_test.shape[0]
    if d.task == "binary":
        assert d.Y_train.shape[1:] == (1,) and d.n_outputs == 1
        assert set(np.unique(d.Y_train)) <= {0.0, 1.0} and d.Y_train.dtype == np.float64
        assert len(d.class_names) == 2
    elif d.task == "multiclass":
        assert d.Y_train.ndim == 1 and d.Y_train.dtype == np.int64
        assert d.n_outputs == len(d.class_names)
        assert d.Y_train.min() >= 0 and d.Y_train.max() < d.n_outputs
    else:
        assert d.Y_train.ndim == 2 and d.Y_train.shape[1] == d.n_outputs
        assert d.Y_train.dtype == np.float64 and d.class_names is None


# --------------------------------------------------------------------------- built-ins


@pytest.mark.parametrize("name, m, n_x, task, k", [
    ("moons", 1000, 2, "binary", 2),
    ("circles", 1000, 2, "binary", 2),
    ("digits", 1797, 64, "multiclass", 10),
    ("breast-cancer", 569, 30, "binary", 2),
    ("iris", 150, 4, "multiclass", 3),
])
def test_builtin_shapes_and_task(name, m, n_x, task, k):
    d = load_data(name)
    assert name in BUILTIN and d.name == name
    assert d.task == task and len(d.class_names) == k
    check_shapes(d, m, n_x)
    assert d.X_test.shape[0] == int(np.ceil(0.25 * m))
    assert d.output == {"binary": "sigmoid", "multiclass": "softmax"}[task]


def test_builtin_class_names():
    assert load_data("iris").class_names == ["setosa", "versicolor", "virginica"]
    assert load_data("breast-cancer").class_names == ["malignant", "benign"]
    assert load_data("digits").class_names == [str(i) for i in range(10)]
    assert load_data("BREAST_CANCER").name == "breast-cancer"


def test_generated_n_samples_and_seed():
    d = load_data("moons", n_samples=200, test_size=0.1)
    check_shapes(d, 200, 2)
    assert d.X_test.shape[0] == 20
    a, b = load_data("circles", n_samples=100, seed=3), load_data("circles", n_samples=100, seed=3)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    c = load_data("circles", n_samples=100, seed=4)
    assert not np.array_equal(a.X_train, c.X_train)


def test_split_is_stratified():
    d = load_data("iris", test_size=0.2)
    assert np.bincount(d.Y_test).tolist() == [10, 10, 10]


@pytest.mark.parametrize("name", ["iris", "breast-cancer"])
def test_same_seed_same_split_different_seed_different_split(name):
    a, b = load_data(name, seed=7), load_data(name, seed=7)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.Y_test, b.Y_test)
    c = load_data(name, seed=8)
    assert not np.array_equal(a.X_test, c.X_test)


def test_standardization_uses_training_statistics_only():
    d = load_data("breast-cancer")
    np.testing.assert_allclose(d.X_train.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(d.X_train.std(axis=0), 1, atol=1e-10)
    # the test part is scaled with the training mean/std, so it is not exactly 0/1
    assert np.abs(d.X_test.mean(axis=0)).max() > 1e-3
    raw = load_data("breast-cancer", standardize=False)
    np.testing.assert_allclose(d.X_test, (raw.X_test - raw.X_train.mean(0)) / raw.X_train.std(0))


def test_standardize_constant_column_gets_std_one():
    X = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    Xt, Xs, mean, std = standardize(X, np.array([[3.0, 6.0]]))
    np.testing.assert_allclose(mean, [3, 5])
    np.testing.assert_allclose(std, [np.sqrt(8 / 3), 1])
    np.testing.assert_allclose(Xt[:, 1], 0)
    np.testing.assert_allclose(Xs, [[0, 1]])


def test_standardize_overflow_is_value_error():
    with pytest.raises(ValueError, match="too large to standardize"):
        standardize(np.array([[1e308], [-1e308], [1e308]]))


def test_test_size_zero_gives_empty_test_part():
    for name, y_shape in [("moons", (0, 1)), ("iris", (0,))]:
        d = load_data(name, test_size=0)
        assert d.X_test.shape == (0, d.n_features) and d.Y_test.shape == y_shape
        assert d.Y_test.dtype == d.Y_train.dtype


def test_describe_is_one_line():
    line = describe(load_data("iris"))
    assert line == ("iris: 112 train / 38 test examples, 4 features, multiclass, 3 classes "
                    "(setosa, versicolor, virginica)")
    line = describe(from_arrays(np.arange(10.0), np.arange(10.0) / 3, name="r"))
    assert "regression, 1 output" in line and "\n" not in line


# --------------------------------------------------------------------------- CSV


def test_csv_target_by_name_default_last_and_string_labels(tmp_path):
    rows = [[i, 2 * i % 7, ["cat", "dog", "emu"][i % 3], i % 2] for i in range(30)]
    path = write_csv(tmp_path / "pets.csv", ["a", "b", "odd"], [r[:2] + r[3:] for r in rows])
    d = load_data(path)  # last column, integers 0/1
    assert d.name == "pets.csv" and d.task == "binary" and d.class_names == ["0", "1"]
    assert d.feature_names == ["a", "b"]
    d = load_data(path, target="a")
    assert d.task == "regression" and d.feature_names == ["b", "odd"]
    path = write_csv(tmp_path / "pets2.csv", ["a", "b", "kind", "odd"], rows)
    with pytest.raises(ValueError, match="non-numeric value 'cat' at line 2, column 'kind'"):
        load_data(path, target="odd")
    d = load_data(path, target="kind", test_size=0)
    assert d.task == "multiclass" and d.class_names == ["cat", "dog", "emu"]
    assert d.feature_names == ["a", "b", "odd"]
    assert d.Y_train.tolist() == [i % 3 for i in range(30)]


def test_csv_feature_column_with_text_names_line_and_column(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["a", "b", "y"], [[1, 2, 0], [3, "oops", 1]])
    raises(r"non-numeric value 'oops' at line 3, column 'b'", path)
    path = write_csv(tmp_path / "m.csv", ["a", "b", "y"], [[1, 2, 0], [3, "", 1]])
    raises(r"missing value at line 3, column 'b'", path)


def test_csv_binary_text_labels_and_values(tmp_path):
    path = write_csv(tmp_path / "b.csv", ["x", "label"],
                     [[i * 0.5, "yes" if i % 3 else "no"] for i in range(12)])
    d = load_data(path, test_size=0, standardize=False)
    assert d.task == "binary" and d.class_names == ["no", "yes"]
    np.testing.assert_array_equal(d.X_train[:, 0], [i * 0.5 for i in range(12)])
    np.testing.assert_array_equal(d.Y_train[:, 0], [1.0 if i % 3 else 0.0 for i in range(12)])


def test_csv_regression_and_several_targets(tmp_path):
    rows = [[i, i * 0.25, i * 1.5] for i in range(20)]
    path = write_csv(tmp_path / "r.csv", ["x", "y1", "y2"], rows)
    d = load_data(path)
    assert d.task == "regression" and d.n_outputs == 1 and d.feature_names == ["x", "y1"]
    d = load_data(path, target=["y1", "y2"], test_size=0)
    assert d.task == "regression" and d.n_outputs == 2 and d.Y_train.shape == (20, 2)
    np.testing.assert_array_equal(d.Y_train, np.array(rows)[:, 1:])


def test_csv_tab_semicolon_blank_lines_and_bom(tmp_path):
    path = write_text(tmp_path / "tab.csv", "a\tb\ty\n1\t2\t0\n\n3\t4\t1\n5\t6\t0\n7\t8\t1\n")
    assert load_data(path, test_size=0).X_train.shape == (4, 2)
    path = tmp_path / "semi.csv"
    path.write_bytes("\ufeffa;b;y\r\n1;2;0\r\n3;4;1\r\n;;\r\n5;6;0\r\n".encode())
    d = load_data(path, test_size=0)
    assert d.feature_names == ["a", "b"] and d.X_train.shape == (3, 2)


# --------------------------------------------------------------------------- task inference


def test_task_inference_thresholds():
    X = np.arange(60.0)
    assert from_arrays(X, np.arange(60) % 2 * 2 - 1).task == "binary"  # {-1, 1}
    assert from_arrays(X, np.arange(60) % 2 * 2 - 1).class_names == ["-1", "1"]
    assert from_arrays(X, np.arange(60) % 20).task == "multiclass"
    assert from_arrays(X, np.arange(60) % 20 + 100).task == "multiclass"
    assert from_arrays(X, np.arange(60) % 21 + 100).task == "regression"  # 21 values, not 0..k-1
    d = from_arrays(X, np.arange(60) % 30)  # 30 classes that are exactly the indices 0..29
    assert d.task == "multiclass" and d.n_outputs == 30
    assert from_arrays(X, np.arange(60) * 0.5).task == "regression"
    assert from_arrays(X, np.arange(60.0) % 3).task == "multiclass"  # integral floats
    d = from_arrays(X, np.stack([X, -X], axis=1))
    assert d.task == "regression" and d.n_outputs == 2


def test_one_hot_labels_are_classes():
    y = np.arange(30) % 3
    d = from_arrays(np.arange(30.0), np.eye(3)[y], test_size=0)
    assert d.task == "multiclass" and d.n_outputs == 3
    np.testing.assert_array_equal(d.Y_train, y)


def test_explicit_task_overrides_and_is_checked():
    X = np.arange(40.0)
    d = from_arrays(X, np.arange(40) % 2, task="multiclass")
    assert d.task == "multiclass" and d.n_outputs == 2 and d.Y_train.dtype == np.int64
    d = from_arrays(X, np.arange(40) % 3, task="regression")
    assert d.task == "regression" and d.Y_train.shape[1] == 1
    with pytest.raises(ValueError, match=r"task='binary' needs exactly 2 classes.*have 3"):
        from_arrays(X, np.arange(40) % 3, task="binary")
    with pytest.raises(ValueError, match=r"task='multiclass' needs integer or text.*0\.5"):
        from_arrays(X, np.arange(40) * 0.5, task="multiclass")
    with pytest.raises(ValueError, match=r"task='binary' needs integer or text"):
        from_arrays(X, np.arange(40) * 0.5, task="binary")
    with pytest.raises(ValueError, match=r"task='regression' needs numeric.*text"):
        from_arrays(X, np.array(["a", "b"] * 20), task="regression")
    with pytest.raises(ValueError, match=r"task must be one of 'binary'.*got 'logistic'"):
        load_data("iris", task="logistic")
    with pytest.raises(ValueError, match=r"task='multiclass' needs at least 2 classes"):
        from_arrays(X, np.zeros(40), task="multiclass")


def test_from_arrays_class_names():
    d = from_arrays(np.arange(6.0), np.array([0, 1, 2] * 2), class_names=["a", "b", "c"])
    assert d.class_names == ["a", "b", "c"] and d.task == "multiclass"
    with pytest.raises(ValueError, match=r"class indices 0\.\.1"):
        from_arrays(np.arange(6.0), np.array([0, 1, 2] * 2), class_names=["a", "b"])


def test_single_class_labels():
    with pytest.raises(ValueError, match=r"single value \(1\).*task='regression'"):
        from_arrays(np.arange(5.0), np.ones(5))
    assert from_arrays(np.arange(5.0), np.ones(5), task="regression").task == "regression"


def test_split_falls_back_when_a_class_is_too_small():
    y = np.array([0] * 10 + [1])  # class 1 has a single example: cannot stratify
    d = from_arrays(np.arange(11.0), y, test_size=0.3, seed=1)
    assert d.X_train.shape[0] + d.X_test.shape[0] == 11
    d = from_arrays(np.arange(12.0), np.arange(12) % 6, test_size=0.2)  # 3 test rows, 6 classes
    assert d.X_test.shape[0] == 3


def test_fewer_than_two_examples_and_tiny_sets():
    with pytest.raises(ValueError, match="1 example: need at least 2"):
        from_arrays(np.ones((1, 2)), np.ones(1), task="regression")
    d = from_arrays(np.array([[0.0], [1.0]]), np.array([0, 1]))
    assert d.X_train.shape == (1, 1) and d.X_test.shape == (1, 1)
    with pytest.raises(ValueError, match="leaves no training examples"):
        from_arrays(np.arange(3.0), np.array([0, 1, 0]), test_size=0.9)


# --------------------------------------------------------------------------- NPZ


def test_npz_roundtrip_and_lowercase_y(tmp_path):
    rng = np.random.RandomState(0)
    X, y = rng.randn(40, 3), rng.randint(0, 4, 40)
    np.savez(tmp_path / "a.npz", X=X, y=y)
    d = load_data(tmp_path / "a.npz", test_size=0, standardize=False)
    assert d.task == "multiclass" and d.name == "a.npz"
    np.testing.assert_array_equal(d.X_train, X)
    np.testing.assert_array_equal(d.Y_train, y)


def test_npz_shapes_1d_x_nd_x_row_y_and_named_target(tmp_path):
    np.savez(tmp_path / "one.npz", X=np.arange(10.0), Y=np.arange(10.0) ** 2 / 3)
    d = load_data(tmp_path / "one.npz")
    assert d.n_features == 1 and d.task == "regression"
    np.savez(tmp_path / "img.npz", X=np.zeros((12, 2, 3)), Y=np.arange(12) % 2)
    assert load_data(tmp_path / "img.npz").n_features == 6
    np.savez(tmp_path / "row.npz", X=np.zeros((12, 2)), Y=(np.arange(12) % 2)[None, :])
    assert load_data(tmp_path / "row.npz").task == "binary"
    np.savez(tmp_path / "named.npz", X=np.zeros((12, 2)), labels=np.array(["a", "b", "c"] * 4),
             feature_names=np.array(["u", "v"]))
    d = load_data(tmp_path / "named.npz", target="labels")
    assert d.class_names == ["a", "b", "c"] and d.feature_names == ["u", "v"]
    np.savez(tmp_path / "bytes.npz", X=np.zeros((4, 1)), Y=np.array([b"n", b"y", b"n", b"y"]))
    assert load_data(tmp_path / "bytes.npz").class_names == ["n", "y"]


# --------------------------------------------------------------------------- bad inputs


def test_unknown_source_lists_what_is_allowed():
    message = raises(r"unknown data 'foo'", "foo")
    assert "moons, circles, digits, breast-cancer, iris" in message and ".csv or .npz" in message
    raises(r"unknown data", 42)


def test_missing_file_directory_and_extension(tmp_path):
    raises(r"no such file: .*nope\.csv", tmp_path / "nope.csv")
    raises(r"no such file: .*nope\.npz", str(tmp_path / "nope.npz"))
    (tmp_path / "dir.csv").mkdir()
    raises(r"is a directory", tmp_path / "dir.csv")
    raises(r"is a directory", tmp_path)
    write_text(tmp_path / "data.txt", "a,b\n1,2\n")
    raises(r"unsupported file type '\.txt'.*\.csv or \.npz", tmp_path / "data.txt")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = write_text(tmp_path / "secret.csv", "a,y\n1,0\n2,1\n")
    path.chmod(0)
    try:
        raises(r"cannot read .*secret\.csv.*[Pp]ermission", path)
    finally:
        path.chmod(0o600)


def test_target_option_errors(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["a", "b", "y"], [[1, 2, 0], [3, 4, 1]])
    raises(r"no column 'z' in .*t\.csv: its columns are a, b, y", path, target="z")
    raises(r"leaves no feature columns", path, target=["a", "b", "y"])
    raises(r"target must be a column name", path, target=3)
    raises(r"target applies to \.csv and \.npz files", "iris", target="y")


@pytest.mark.parametrize("text, match", [
    ("", r"is empty: .*header row"),
    ("\n\n  \n", r"is empty"),
    ("a,b,y\n", r"header but no data rows"),
    ("1,2,3\n4,5,6\n", r"looks like data, not a header"),
    ("only\n1\n2\n", r"single column 'only': it needs at least 2"),
    ("a,b,y\n1,2,0\n3,4\n", r"line 3 of .* has 2 fields, expected 3"),
    ("a,b,y\n1,2,0\n3,4,1,9\n", r"line 3 of .* has 4 fields, expected 3"),
    ("a,b,y\n1,2,0\n3,x,1\n", r"non-numeric value 'x' at line 3, column 'b'"),
    ("a,b,y\n1,nan,0\n3,4,1\n", r"non-finite value 'nan' at line 2, column 'b'"),
    ("a,b,y\n1,2,0\n3,-inf,1\n", r"non-finite value '-inf' at line 3, column 'b'"),
    ("a,b,y\n1,2,0\n3,1e999,1\n", r"non-finite value '1e999' at line 3"),
    ("a,b,y\n1,2,0\n3,4,nan\n", r"non-finite target value 'nan' at line 3, column 'y'"),
    ("a,b,y\n1,2,0\n3,4,\n", r"missing target value at line 3, column 'y'"),
    ("a,b,y\n1,2,0\n3,4,?\n", r"mixes numbers .*and text"),
    ("a,a,y\n1,2,0\n3,4,1\n", r"column name 'a' appears twice"),
    ("x,y\n1,0\n", r"1 example: need at least 2"),
])
def test_bad_csv(tmp_path, text, match):
    raises(match, write_text(tmp_path / "bad.csv", text))


def test_binary_csv_and_nul_bytes(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"\xff\xfe\x00\x81garbage")
    raises(r"not UTF-8 text|binary data", path)
    path.write_bytes(b"a,b\x00,y\n1,2,3\n")
    raises(r"binary data \(NUL bytes\)", path)


def test_bad_npz(tmp_path):
    np.savez(tmp_path / "len.npz", X=np.ones((5, 2)), Y=np.arange(4))
    raises(r"X has 5 rows \(examples\) but Y has 4", tmp_path / "len.npz")
    np.savez(tmp_path / "tr.npz", X=np.ones((2, 6)), Y=np.arange(6) % 2)
    raises(r"X looks transposed", tmp_path / "tr.npz")
    np.savez(tmp_path / "keys.npz", A=np.ones(3), B=np.ones(3))
    raises(r"has no X array \(it has: A, B\)", tmp_path / "keys.npz")
    np.savez(tmp_path / "noy.npz", X=np.ones((3, 2)), Z=np.ones(3))
    raises(r"has no Y \(or y\) array \(it has: X, Z\)", tmp_path / "noy.npz")
    raises(r"has no 'lbl' array", tmp_path / "noy.npz", target="lbl")
    np.savez(tmp_path / "nan.npz", X=np.array([[1.0], [np.nan], [2.0]]), Y=np.arange(3))
    raises(r"X in .* non-finite value \(nan\) at row 1, column 0", tmp_path / "nan.npz")
    np.savez(tmp_path / "ynan.npz", X=np.ones((3, 1)), Y=np.array([0.0, np.inf, 1.0]))
    raises(r"Y in .* non-finite label", tmp_path / "ynan.npz")
    np.savez(tmp_path / "obj.npz", X=np.ones((2, 1)), Y=np.array([1, "a"], dtype=object))
    raises(r"cannot read the arrays", tmp_path / "obj.npz")  # never unpickled
    np.savez(tmp_path / "cplx.npz", X=np.ones((2, 1)) * 1j, Y=np.arange(2))
    raises(r"complex", tmp_path / "cplx.npz")
    np.savez(tmp_path / "str.npz", X=np.array([["a"], ["b"]]), Y=np.arange(2))
    raises(r"X in .* must hold numbers", tmp_path / "str.npz")
    np.savez(tmp_path / "scalar.npz", X=np.float64(3), Y=np.arange(2))
    raises(r"got a scalar", tmp_path / "scalar.npz")
    np.savez(tmp_path / "one.npz", X=np.ones((1, 2)), Y=np.ones(1))
    raises(r"1 example: need at least 2", tmp_path / "one.npz")
    np.savez(tmp_path / "fn.npz", X=np.ones((3, 2)), Y=np.arange(3), feature_names=np.ones(2))
    raises(r"feature_names .* must be 2 strings", tmp_path / "fn.npz")
    np.save(tmp_path / "single.npy", np.ones(3))
    os.replace(tmp_path / "single.npy", tmp_path / "single.npz")
    raises(r"single array \(\.npy data\), not an \.npz archive", tmp_path / "single.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    raises(r"not an \.npz archive", tmp_path / "junk.npz")
    (tmp_path / "trunc.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 20)
    raises(r"cannot read .* as an \.npz archive", tmp_path / "trunc.npz")
    with zipfile.ZipFile(tmp_path / "badmember.npz", "w") as z:
        z.writestr("X.npy", b"\x93NUMPY garbage")
        z.writestr("Y.npy", b"junk")
    raises(r"cannot read the arrays", tmp_path / "badmember.npz")


def test_option_errors():
    raises(r"test_size must be a fraction in \[0, 1\), got 1", "iris", test_size=1)
    raises(r"test_size must be a fraction in \[0, 1\), got -0\.1", "iris", test_size=-0.1)
    raises(r"test_size must be a fraction", "iris", test_size="0.2")
    raises(r"seed must be an integer", "iris", seed=1.5)
    raises(r"n_samples must be an integer >= 2, got 1", "moons", n_samples=1)
    raises(r"standardize must be True or False", "iris", standardize="yes")


# --------------------------------------------------------------------------- properties

_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@_SETTINGS
@given(table=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=2,
                                                        max_side=8), elements=finite))
def test_csv_numeric_tables_round_trip(tmp_path, table):
    m, n = table.shape
    header = [f"c{j}" for j in range(n)]
    path = write_csv(tmp_path / "p.csv", header, [[repr(float(v)) for v in row] for row in table])
    X, labels, names = read_csv(path)
    assert names == header[:-1]
    np.testing.assert_array_equal(X, table[:, :-1])
    np.testing.assert_array_equal(labels, table[:, -1])
    X, labels, names = read_csv(path, target=header[0])
    np.testing.assert_array_equal(X, table[:, 1:])
    np.testing.assert_array_equal(labels, table[:, 0])


@_SETTINGS
@given(X=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1,
                                                    max_side=6), elements=finite),
       data=st.data())
def test_npz_arrays_round_trip(tmp_path, X, data):
    m = X.shape[0]
    Y = data.draw(st.one_of(
        hnp.arrays(np.float64, (m,), elements=finite),
        hnp.arrays(np.int64, (m, 2), elements=st.integers(-5, 5)),
        hnp.arrays(np.dtype("U3"), (m,), elements=st.text("abc", min_size=1, max_size=3)),
    ))
    np.savez(tmp_path / "p.npz", X=X, Y=Y)
    X2, Y2, names = read_npz(tmp_path / "p.npz")
    np.testing.assert_array_equal(X2, X.reshape(m, -1))
    np.testing.assert_array_equal(Y2, Y)
    assert len(names) == X2.shape[1]


csv_pieces = st.sampled_from(list("0123456789.,-+e\n\r\t;\" abxyinfa#\x00") + ["nan", "inf"])


@_SETTINGS
@given(text=st.one_of(st.lists(csv_pieces, max_size=80).map("".join), st.text(max_size=60)),
       task=st.sampled_from([None, "binary", "multiclass", "regression"]),
       test_size=st.sampled_from([0, 0.25, 0.5]))
def test_garbage_csv_only_value_errors(tmp_path, text, task, test_size):
    path = tmp_path / "g.csv"
    path.write_text("a,b,y\n" + text if len(text) % 2 else text, encoding="utf-8",
                    errors="surrogatepass")
    try:
        d = load_data(path, task=task, test_size=test_size)
    except ValueError as e:
        assert "\n" not in str(e)
    else:
        assert np.isfinite(d.X_train).all() and np.isfinite(d.X_test).all()
        assert d.X_train.shape[0] >= 1


@_SETTINGS
@given(blob=st.binary(max_size=200), prefix=st.sampled_from([b"", b"PK\x03\x04", b"\x93NUMPY"]))
def test_garbage_npz_only_value_errors(tmp_path, blob, prefix):
    path = tmp_path / "g.npz"
    path.write_bytes(prefix + blob)
    with pytest.raises(ValueError) as info:
        load_data(path)
    assert "\n" not in str(info.value)


@_SETTINGS
@given(blob=st.binary(max_size=200))
def test_garbage_bytes_as_csv_only_value_errors(tmp_path, blob):
    path = tmp_path / "g.csv"
    path.write_bytes(blob)
    try:
        load_data(path)
    except ValueError as e:
        assert re.fullmatch(r"[^\n]+", str(e))
