"""Bad input: each case is answered by one line on stderr naming the problem and exit status 2
(CLI) — the same message as the ValueError/TypeError of the API — never a traceback, and no
existing run folder is touched.

Property-based tests here cover the schedule-string parser; those of the CSV and NPZ readers
are in tests/test_datasets.py (test_csv_numeric_tables_round_trip, test_npz_arrays_round_trip,
test_garbage_csv_only_value_errors, test_garbage_npz_only_value_errors,
test_garbage_bytes_as_csv_only_value_errors).
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gdlab import GD, MLP, Adam, Momentum, RMSProp, fit
from gdlab.cli import main
from gdlab.data.datasets import load_data
from gdlab.lab.compare import check_layers
from gdlab.schedules import SCHEDULES, Schedule, parse_schedule

# --------------------------------------------------------------------------- the files


def _files(root: Path) -> dict[str, Path]:
    """Bad data files, one per problem."""
    root.mkdir(parents=True, exist_ok=True)

    def text(name, content):
        (root / name).write_text(content)
        return root / name

    files = {
        "missing": root / "missing.csv",
        "empty": text("empty.csv", ""),
        "header_only": text("header.csv", "a,b,y\n"),
        "ragged": text("ragged.csv", "a,b,y\n1,2,0\n3,4\n5,6,1\n"),
        "text_cell": text("text.csv", "a,b,y\n1,2,0\n3,abc,1\n5,6,1\n"),
        "nan_feature": text("nanx.csv", "a,b,y\n1,2,0\n3,nan,1\n5,6,1\n"),
        "inf_label": text("infy.csv", "a,b,y\n1,2,0\n3,4,inf\n5,6,1\n"),
        "mixed_labels": text("mixed.csv", "a,b,y\n1,2,0\n3,4,cat\n5,6,1\n"),
        "one_class": text("one.csv", "a,b,y\n1,2,1\n3,4,1\n5,6,1\n7,8,1\n"),
        "good": text("good.csv", "a,b,y\n" + "".join(f"{i % 7},{i % 5},{i % 2}\n"
                                                     for i in range(40))),
        "not_utf8": root / "latin1.csv",
        "directory": root / "folder.csv",
        "npy": root / "array.npz",
        "lengths": root / "lengths.npz",
        "no_y": root / "noy.npz",
        "nan_npz": root / "nan.npz",
        "unsupported": text("data.txt", "1 2 3\n"),
    }
    files["not_utf8"].write_bytes("a,b,y\n1,2,caf\xe9\n".encode("latin-1"))
    files["directory"].mkdir(exist_ok=True)
    np.save(root / "array.npy", np.ones((4, 2)))
    shutil.copy(root / "array.npy", files["npy"])
    np.savez(files["lengths"], X=np.ones((5, 2)), Y=np.arange(4) % 2)
    np.savez(files["no_y"], X=np.ones((5, 2)), labels=np.arange(5) % 2)
    np.savez(files["nan_npz"], X=np.array([[1.0, 2], [np.nan, 1], [3, 4]]), Y=np.arange(3) % 2)
    return files


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return _files(tmp_path_factory.mktemp("bad"))


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """A finished gdlab fit run folder (2 epochs)."""
    run = tmp_path_factory.mktemp("good") / "run"
    assert main(["fit", "--data", "moons", "--layers", "2,4,1", "--epochs", "2", "--out",
                 str(run), "-q"]) == 0
    return run


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _params():
    torch.manual_seed(0)
    return MLP([2, 4, 1]).parameters()


def _fit_api(**kwargs):
    torch.manual_seed(0)
    model = MLP([2, 4, 1])
    X, Y = torch.randn(20, 2), (torch.arange(20) % 2).float()
    options = {"epochs": 1, "batch_size": 4, "progress": False, **kwargs}
    return fit(model, X, Y, GD(model.parameters(), lr=0.1), **options)


# (id, argv with {name} placeholders for files, API call raising the same error or None,
#  expected message)
CASES = [
    ("missing file", ["fit", "--data", "{missing}"],
     lambda f: load_data(f["missing"]), r"no such file: .*missing\.csv"),
    ("directory as data", ["fit", "--data", "{directory}"],
     lambda f: load_data(f["directory"]), r"folder\.csv is a directory"),
    ("unsupported file type", ["fit", "--data", "{unsupported}"],
     lambda f: load_data(f["unsupported"]), r"unsupported file type '\.txt'"),
    ("not UTF-8", ["fit", "--data", "{not_utf8}"],
     lambda f: load_data(f["not_utf8"]), r"cannot read .*latin1\.csv: it is not UTF-8 text"),
    ("empty CSV", ["fit", "--data", "{empty}"],
     lambda f: load_data(f["empty"]), r"empty\.csv is empty: a \.csv file needs a header row"),
    ("header but no rows", ["compare", "--data", "{header_only}"],
     lambda f: load_data(f["header_only"]), r"has a header but no data rows"),
    ("ragged rows", ["fit", "--data", "{ragged}"],
     lambda f: load_data(f["ragged"]), r"line 3 of .*ragged\.csv has 2 fields, expected 3"),
    ("non-numeric cell", ["fit", "--data", "{text_cell}"],
     lambda f: load_data(f["text_cell"]), r"non-numeric value 'abc' at line 3, column 'b'"),
    ("NaN feature", ["fit", "--data", "{nan_feature}"],
     lambda f: load_data(f["nan_feature"]), r"non-finite value 'nan' at line 3, column 'b'"),
    ("inf label", ["fit", "--data", "{inf_label}"],
     lambda f: load_data(f["inf_label"]), r"non-finite target value 'inf' at line 3"),
    ("labels mix numbers and text", ["fit", "--data", "{mixed_labels}"],
     lambda f: load_data(f["mixed_labels"]), r"mixes numbers .* and text"),
    ("labels that fit no loss (one class)", ["fit", "--data", "{one_class}"],
     lambda f: load_data(f["one_class"]), r"have a single value \(1\): classification needs"),
    ("X and Y of different lengths", ["fit", "--data", "{lengths}"],
     lambda f: load_data(f["lengths"]), r"X has 5 rows \(examples\) but Y has 4"),
    (".npz without Y", ["fit", "--data", "{no_y}"],
     lambda f: load_data(f["no_y"]), r"has no Y \(or y\) array \(it has: X, labels\)"),
    (".npy named .npz", ["fit", "--data", "{npy}"],
     lambda f: load_data(f["npy"]), r"not an \.npz archive"),
    ("NaN in .npz", ["fit", "--data", "{nan_npz}"],
     lambda f: load_data(f["nan_npz"]), r"non-finite value \(nan\) at row 1"),
    ("target column that does not exist", ["fit", "--data", "{good}", "--target", "label"],
     lambda f: load_data(f["good"], target="label"), r"no column 'label' in .*: its columns "
                                                     r"are a, b, y"),
    ("target with a built-in set", ["fit", "--target", "y"],
     lambda f: load_data("moons", target="y"), r"target applies to \.csv and \.npz files"),
    ("unknown data name", ["compare", "--data", "mnist"],
     lambda f: load_data("mnist"), r"unknown data 'mnist': give one of moons, circles"),
    ("lr = 0", ["fit", "--lr", "0"],
     lambda f: GD(_params(), lr=0.0), r"lr must be a finite number > 0, got 0\.0"),
    ("lr < 0", ["fit", "--lr", "-0.1"],
     lambda f: Adam(_params(), lr=-0.1), r"lr must be a finite number > 0, got -0\.1"),
    ("lr = nan", ["compare", "--lr", "nan"], None, r"lr must be a finite number > 0, got nan"),
    ("beta > 1", ["fit", "--optimizer", "momentum", "--beta", "1.2"],
     lambda f: Momentum(_params(), beta=1.2), r"beta must be in \[0, 1\), got 1\.2"),
    ("beta1 < 0", ["fit", "--beta1", "-0.1"],
     lambda f: Adam(_params(), beta1=-0.1), r"beta1 must be in \[0, 1\), got -0\.1"),
    ("beta2 = 1", ["fit", "--optimizer", "rmsprop", "--beta2", "1"],
     lambda f: RMSProp(_params(), beta2=1.0), r"beta2 must be in \[0, 1\), got 1\.0"),
    ("eps < 0", ["fit", "--eps=-1e-8"],
     lambda f: Adam(_params(), eps=-1e-8), r"eps must be a finite number >= 0, got -1e-08"),
    ("β for an optimizer without one", ["fit", "--optimizer", "gd", "--beta1", "0.9"], None,
     r"--beta1 does not apply to gd \(it takes none of them\)"),
    ("batch size 0", ["fit", "--batch-size", "0"],
     lambda f: _fit_api(batch_size=0), r"batch_size must be an integer >= 1, got 0"),
    ("batch size < 0", ["compare", "--batch-size", "-5"],
     lambda f: _fit_api(batch_size=-5), r"batch_size must be an integer >= 1, got -5"),
    ("epochs 0", ["fit", "--epochs", "0"],
     lambda f: _fit_api(epochs=0), r"epochs must be an integer >= 1, got 0"),
    ("epochs < 0", ["compare", "--epochs", "-3"],
     lambda f: _fit_api(epochs=-3), r"epochs must be an integer >= 1, got -3"),
    ("epochs not a number", ["fit", "--epochs", "many"], None,
     r"argument --epochs: invalid int value: 'many'"),
    ("unknown optimizer", ["fit", "--optimizer", "adamw"], None,
     r"unknown optimizer 'adamw'; allowed: gd, momentum, rmsprop, adam"),
    ("unknown schedule", ["fit", "--schedule", "cosine"],
     lambda f: parse_schedule("cosine", 0.1), r"unknown schedule 'cosine'; allowed: constant"),
    ("malformed schedule", ["fit", "--schedule", "inverse_time:decay_rate"],
     lambda f: parse_schedule("inverse_time:decay_rate", 0.1),
     r"malformed schedule option 'decay_rate' in 'inverse_time:decay_rate'"),
    ("schedule option out of range", ["fit", "--schedule", "exponential:base=2"],
     lambda f: parse_schedule("exponential:base=2", 0.1), r"base must be in \(0, 1\], got 2"),
    ("schedule missing its option", ["fit", "--schedule", "inverse_time"],
     lambda f: parse_schedule("inverse_time", 0.1), r"needs option decay_rate"),
    ("layers that don't match", ["fit", "--layers", "3,4,1"],
     lambda f: check_layers([3, 4, 1], load_data("moons")),
     r"layers 3,4,1 don't match the data 'moons': it needs 2 inputs and 1 output"),
    ("layers not integers", ["fit", "--layers", "2,four,1"], None,
     r"--layers must be comma-separated integers like 2,5,2,1, got '2,four,1'"),
    ("checkpoint every 0", ["fit", "--checkpoint-every", "0"], None,
     r"checkpoint_every must be an integer >= 1, got 0"),
    ("divergence factor <= 1", ["fit", "--divergence-factor", "1"],
     lambda f: _fit_api(divergence_factor=1.0), r"divergence_factor must be > 1"),
    ("reduce factor >= 1", ["fit", "--reduce-factor", "2"],
     lambda f: _fit_api(reduce_factor=2.0), r"reduce_factor must be in \(0, 1\)"),
    ("unknown divergence action", ["fit", "--on-divergence", "retry"],
     lambda f: _fit_api(on_divergence="retry"), r"(invalid choice: 'retry'|on_divergence must)"),
    ("no --out", ["fit", "--out", None], None, r"--out RUN_DIR is required"),
    ("out is a file", ["fit", "--out", "{good}"], None, r"--out '.*good\.csv' exists and is not "
                                                       r"a folder"),
    ("out is a foreign folder", ["fit", "--out", "{foreign}"], None,
     r"exists and is not a gdlab output folder; choose another folder or add --force"),
    ("resume a folder that is not a run", ["fit", "--resume", "{foreign}"], None,
     r"is not a gdlab run folder \(it has no config\.json\)"),
    ("resume a folder that does not exist", ["fit", "--resume", "{missing}"], None,
     r"no such run folder"),
    ("resume with training settings", ["fit", "--resume", "{run}", "--optimizer", "gd"], None,
     r"--resume continues a run with the settings in its config\.json; .* got --optimizer"),
    ("resume with fewer epochs than done", ["fit", "--resume", "{run}", "--epochs", "1"], None,
     r"has already trained 2 epochs: --epochs must be at least 2, got 1"),
    ("resume with a bad α", ["fit", "--resume", "{run}", "--lr", "-1"], None,
     r"lr must be a finite number > 0, got -1\.0"),
    ("labels that don't fit a sigmoid", None,
     lambda f: fit(MLP([2, 1]), torch.zeros(4, 2), torch.tensor([0.0, 1, 2, 1]),
                   GD(_params()), epochs=1, batch_size=2, progress=False),
     r"labels must be in \[0, 1\] for a sigmoid output \(binary cross-entropy\), got values "
     r"from 0 to 2"),
    ("class index too large for a softmax", None,
     lambda f: fit(MLP([2, 3], output="softmax"), torch.zeros(4, 2), torch.tensor([0, 1, 3, 1]),
                   GD(_params()), epochs=1, batch_size=2, progress=False),
     r"labels must be class indices 0\.\.2 for a softmax output of 3 classes"),
    ("Y of the wrong shape", None,
     lambda f: fit(MLP([2, 1], output="linear"), torch.zeros(4, 2), torch.zeros(4, 3),
                   GD(_params()), epochs=1, batch_size=2, progress=False),
     r"a linear output of 1 unit takes Y of shape \(4, 1\) or \(4,\), got Y of shape \(4, 3\)"),
    ("lr of gdlab lr", ["lr", "{run}", "0"], None, r"lr must be a finite number > 0, got 0\.0"),
    ("gdlab lr on a folder that is not a run", ["lr", "{foreign}", "0.1"], None,
     r"is not a gdlab run folder"),
    ("gdlab lr on a finished run", ["lr", "{run}", "0.1"], None,
     r"is not running \(state: finished\): α can only be changed while its gdlab fit runs"),
    ("gdlab status on a folder that is not a run", ["status", "{foreign}"], None,
     r"is not a gdlab run folder"),
]


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_bad_input(case, files, good_run, tmp_path, capsys):
    name, argv, api, message = case
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("precious")
    before = {"run": _snapshot(run), "foreign": _snapshot(foreign)}
    paths = {**{k: str(v) for k, v in files.items()}, "run": str(run), "foreign": str(foreign)}
    api_message = None
    if api is not None:
        with pytest.raises((ValueError, TypeError), match=message) as info:
            api(files)
        api_message = str(info.value)
        assert "\n" not in api_message
    if argv is None:
        return
    argv = [a.format(**paths) if isinstance(a, str) else a for a in argv]
    if argv[0] in ("fit", "compare") and "--out" not in argv and "--resume" not in argv:
        argv += ["--out", str(run)]  # an existing run folder that must come out untouched
    argv = [a for a in argv if a is not None]
    if "--out" in argv and argv.index("--out") == len(argv) - 1:
        argv.pop()
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 2, (out, err)
    assert len(err.splitlines()) == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    assert err.startswith(f"gdlab {argv[0]}: error: "), err  # names the command
    assert re.search(message, err), err
    if api_message is not None and not name.startswith("unknown divergence"):
        assert err == f"gdlab {argv[0]}: error: {api_message}\n"  # the same message
    assert {"run": _snapshot(run), "foreign": _snapshot(foreign)} == before


def test_at_least_25_bad_inputs():
    assert len(CASES) >= 25
    assert sum(case[1] is not None for case in CASES) >= 25


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads any file")
def test_unreadable_file(tmp_path, capsys):
    path = tmp_path / "secret.csv"
    path.write_text("a,y\n1,0\n2,1\n")
    path.chmod(0)
    try:
        assert main(["fit", "--data", str(path), "--out", str(tmp_path / "r"), "-q"]) == 2
    finally:
        path.chmod(0o600)
    assert "cannot read" in capsys.readouterr().err


def test_batch_size_larger_than_m_is_clamped_with_a_warning(tmp_path, capsys):
    """The documented rule: the CLI clamps to m with a one-line warning (m is the training
    part of the split, which a user cannot easily know); the API's fit refuses (ValueError)."""
    status = main(["fit", "--data", "moons", "--layers", "2,4,1", "--epochs", "2",
                   "--batch-size", "5000", "--out", str(tmp_path / "run"), "-q"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert err == ("gdlab fit: warning: --batch-size 5000 is larger than the 750 training "
                   "examples; using 750 (batch gradient descent)\n")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["batch_size"] == 5000
    rows = (tmp_path / "run" / "history.csv").read_text().strip().splitlines()
    assert len(rows) == 3
    status = main(["compare", "--epochs", "1", "--optimizers", "gd", "--schedule", "none",
                   "--batch-size", "5000", "--out", str(tmp_path / "cmp"), "-q"])
    assert status == 0 and "using 750 (batch gradient descent)" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"batch_size must be at most m = 20"):
        _fit_api(batch_size=21)


def test_resume_refuses_data_that_changed(tmp_path, files, capsys):
    data = tmp_path / "data.csv"
    shutil.copy(files["good"], data)
    run = tmp_path / "run"
    assert main(["fit", "--data", str(data), "--epochs", "2", "--out", str(run), "-q"]) == 0
    data.write_text(data.read_text().replace("\n3,3,1\n", "\n3,2,1\n"))
    before = _snapshot(run)
    assert main(["fit", "--resume", str(run), "--epochs", "4", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.endswith("changed since " + str(run) + " started: resuming would not continue "
                        "the same run\n")
    assert _snapshot(run) == before


def test_force_writes_into_a_foreign_folder_and_keeps_its_files(tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("precious")
    assert main(["fit", "--layers", "2,4,1", "--epochs", "1", "--out", str(foreign), "--force",
                 "-q"]) == 0
    assert (foreign / "notes.txt").read_text() == "precious"
    assert (foreign / "model.safetensors").exists()


# --------------------------------------------------------------------------- output folders

# (id, argv, expected message): bad input to the commands that write an output folder of
# their own — refused before the folder is created (and an existing one is left as it was)
FOLDER_CASES = [
    ("tune: α < 0", ["tune", "batch-size", "--lr", "-1"],
     r"lr must be a finite number > 0, got -1\.0"),
    ("tune: missing CSV", ["tune", "batch-size", "--data", "{missing}"], r"no such file: "),
    ("tune: sizes over m", ["tune", "batch-size", "--sizes", "16,5000"],
     r"batch sizes must be between 1 and m = 750 \(the number of training examples\), got "
     r"\[5000\]"),
    ("tune: no time", ["tune", "batch-size", "--seconds", "0"],
     r"seconds must be a finite number > 0, got 0\.0"),
    ("sweep: a negative range (argparse took it for an option)", ["sweep", "--lr", "-1:0.1"],
     r"lr: a range low:high needs 0 < low <= high, got '-1:0\.1'"),
    ("sweep: a negative range written with =", ["sweep", "--lr=-1:0.1"],
     r"lr: a range low:high needs 0 < low <= high, got '-1:0\.1'"),
    ("sweep: a negative α in a list", ["sweep", "--lr", "-0.1,0.1"],
     r"lr must be a finite number > 0, got -0\.1"),
    ("sweep: β out of range in a list", ["sweep", "--optimizer", "momentum", "--beta", "0.9,1.5"],
     r"beta must be in \[0, 1\), got 1\.5"),
    ("sweep: a schedule without its decay rate", ["sweep", "--schedule", "none,inverse_time"],
     r"schedule 'inverse_time' needs option decay_rate"),
    ("sweep: a decay rate the schedule does not take",
     ["sweep", "--schedule", "exponential", "--decay-rate", "0.5"],
     r"schedule 'exponential' takes options base; got decay_rate"),
    ("sweep: a bad schedule key", ["sweep", "--schedule", "staircase:evry=2"],
     r"schedule 'staircase' takes options factor, every; got evry"),
    ("sweep: missing CSV", ["sweep", "--data", "{missing}"], r"no such file: "),
    ("sweep: no trials", ["sweep", "--trials", "0"], r"--trials must be an integer >= 1, got 0"),
    ("make-data: no rows", ["make-data", "--rows", "0"], r"rows must be an integer >= 1, got 0"),
    ("make-data: negative seed", ["make-data", "--seed", "-1"],
     r"seed must be an integer >= 0, got -1"),
    ("figures: unknown figure", ["figures", "eight"], r"unknown figure 'eight'"),
]


@pytest.mark.parametrize("case", FOLDER_CASES, ids=[case[0] for case in FOLDER_CASES])
def test_bad_input_creates_no_output_folder(case, files, tmp_path, capsys):
    _, argv, message = case
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in argv]
    new, old = tmp_path / "new", tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text('{"gdlab": "0", "command": "sweep"}\n')
    for out in (new, old):
        assert main([*argv, "--out", str(out)]) == 2
        out_text, err = capsys.readouterr()
        command = "tune batch-size" if argv[0] == "tune" else argv[0]
        assert err.startswith(f"gdlab {command}: error: ") and len(err.splitlines()) == 1, err
        assert re.search(message, err), err
        assert out_text == ""  # not even the data's line before the error
    assert not new.exists()
    assert [p.name for p in old.iterdir()] == ["config.json"]


# --------------------------------------------------------------------------- security


def test_user_names_are_escaped_in_the_report(tmp_path, capsys):
    path = tmp_path / "evil.csv"
    evil = "<script>alert(1)</script>"
    rows = [f'"{evil}x",b,"{evil}label"'] + [
        f"{i % 7},{(i * 3) % 5},{'<b>yes</b>' if i % 2 else evil}" for i in range(40)]
    path.write_text("\n".join(rows) + "\n")
    status = main(["fit", "--data", str(path), "--target", f"{evil}label", "--epochs", "2",
                   "--out", str(tmp_path / "run"), "-q"])
    assert status == 0, capsys.readouterr().err
    page = (tmp_path / "run" / "report.html").read_text()
    assert "<script>alert" not in page and "<b>yes</b>" not in page
    assert html.escape(f"{evil}x") in page  # the feature name, escaped
    assert html.escape("<b>yes</b>") in page or "\\u003cb\\u003eyes" in page


def test_resume_never_unpickles_a_planted_checkpoint(tmp_path, capsys, good_run):
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        (run / name).unlink(missing_ok=True)
    import pickle

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    body = pickle.dumps({"epoch_num": 1, "x": Exploit()}, protocol=2)
    header = b"gdlab-checkpoint 1 %s %d\n" % (hashlib.sha256(body).hexdigest().encode(),
                                              len(body))
    (run / "checkpoint.pt").write_bytes(header + body)
    assert main(["fit", "--resume", str(run), "-q"]) == 2
    err = capsys.readouterr().err
    assert "checkpoint.pt cannot be loaded" in err and "no good checkpoint left" in err
    assert not (tmp_path / "pwned").exists()


# --------------------------------------------------------------------------- properties

_SETTINGS = settings(max_examples=200, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])
_PIECES = st.sampled_from(list(SCHEDULES) + ["inverse-time", "bogus", "", ":", ",", "=", " ",
                                             "decay_rate", "time_interval", "base", "k", "per",
                                             "factor", "every", "patience", "beta", "lr0",
                                             "threshold", "min_lr", "step", "epoch", "1", "0",
                                             "-1", "0.5", "2", "1e999", "nan", "inf", "1.5",
                                             "x", "True", "10"])


@_SETTINGS
@given(text=st.one_of(st.lists(_PIECES, max_size=12).map("".join), st.text(max_size=40)),
       lr0=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3)))
def test_parse_schedule_gives_a_schedule_or_one_line_value_error(text, lr0):
    try:
        schedule = parse_schedule(text, lr0)
    except ValueError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert isinstance(schedule, Schedule)
    for epoch_num in range(0, 4):
        alpha = schedule(epoch_num, 1 if schedule.per_step else None)
        assert math.isfinite(alpha) and alpha >= 0


_VALID = {
    "constant": {},
    "inverse_time": {"decay_rate": st.floats(0, 100), "time_interval": st.integers(1, 1000)},
    "exponential": {"base": st.floats(0.01, 1)},
    "inverse_sqrt": {"k": st.floats(0.01, 100), "per": st.sampled_from(["epoch", "step"])},
    "staircase": {"factor": st.floats(0.01, 1), "every": st.integers(1, 100)},
    "plateau": {"factor": st.floats(0.01, 0.99), "patience": st.integers(1, 20),
                "beta": st.floats(0, 0.99), "threshold": st.floats(0, 1)},
}


@st.composite
def _schedule_texts(draw):
    name = draw(st.sampled_from(sorted(_VALID)))
    options = {key: draw(strategy) for key, strategy in _VALID[name].items()
               if draw(st.booleans()) or key == "decay_rate"}
    spaced = draw(st.booleans())
    sep, eq = (" , ", " = ") if spaced else (",", "=")
    text = name + (":" + sep.join(f"{k}{eq}{v!r}" if not isinstance(v, str) else f"{k}{eq}{v}"
                                  for k, v in options.items()) if options else "")
    return name, options, text


@_SETTINGS
@given(spec=_schedule_texts(), lr0=st.floats(1e-6, 10))
def test_parse_schedule_round_trips_valid_strings(spec, lr0):
    name, options, text = spec
    schedule = parse_schedule(text, lr0)
    assert type(schedule) is SCHEDULES[name] and schedule.lr0 == lr0
    for key, value in options.items():
        assert getattr(schedule, key) == value
    dashed = name.replace("_", "-") + text[len(name):]  # "inverse-time" is accepted too
    assert type(parse_schedule(dashed, lr0)) is SCHEDULES[name]
    assert schedule(0) == pytest.approx(lr0, rel=1e-12)  # epoch 0: α₀
