"""The run folder of ``gdlab fit``: what is in it, how a run starts there or resumes from
its last checkpoint, and how its results are written (each file atomically).

    config.json          the settings (written first: a resume rebuilds the run from it)
    checkpoint.pt        the latest checkpoint, checkpoint.prev.pt the one before
    status.json          state, epoch, smoothed cost, α, ETA (``gdlab status``)
    control.json         α requests from ``gdlab lr``
    history.csv          one row per epoch: epoch, cost, lr, accuracy, time
    events.json          manual α changes and divergences, as in History.events
    model.safetensors    the weights
    report.html, *.png, minibatch_costs.csv   the report (written by ``gdlab fit``)

``start_run(out, settings)`` and ``resume_run(run_dir)`` set a run up (``FitRun``);
``resume(run_dir)`` continues one to its end exactly as ``gdlab fit --resume`` does. Reading a
folder (``read_config``) needs no torch, so ``gdlab status`` and ``gdlab lr`` start at once.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .._files import CONFIG, FolderLock, atomic_write, lock_folder, write_config
from .callbacks.control import CONTROL, STATUS

if TYPE_CHECKING:
    from ..data.datasets import Dataset
    from .divergence import Diverged
    from .loop import Fit

HISTORY = "history.csv"
EVENTS = "events.json"
WEIGHTS = "model.safetensors"
#: what a run of gdlab fit writes besides its checkpoints; a new run removes these and the
#: checkpoints first (and nothing else)
RUN_FILES = (STATUS, CONTROL, HISTORY, EVENTS, WEIGHTS, "history.jsonl", "report.html",
             "minibatch_costs.csv",
             "cost_per_iteration.png", "epoch_cost.png", "cost_over_time.png",
             "learning_rate.png",
             "decision_boundary.png")
#: the settings a run needs (``start_run``), and so what --resume needs from config.json
REQUIRED = ("data", "layers", "optimizer", "lr", "epochs", "batch_size", "seed", "dtype")
#: the other settings, with the values they take when left out
DEFAULTS = {"target": None, "schedule": None, "hyperparameters": {}, "checkpoint_every": None,
            "on_divergence": "stop", "divergence_factor": 10.0, "reduce_factor": 0.5,
            "model": None, "loss": None}
#: the hyperparameters each optimizer takes besides α (the options --beta, --beta1, ...)
HYPERPARAMETERS = {"gd": (), "momentum": ("beta",), "rmsprop": ("beta2", "eps"),
                   "adam": ("beta1", "beta2", "eps")}


def read_config(path) -> dict:
    """The settings of a gdlab run folder; ValueError if ``path`` is not one."""
    run_dir = Path(path)
    if not run_dir.exists():
        raise ValueError(f"no such run folder: {run_dir}")
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir} is not a folder: give the run folder of gdlab fit")
    try:
        config = json.loads((run_dir / CONFIG).read_text())
    except FileNotFoundError:
        raise ValueError(f"{run_dir} is not a gdlab run folder (it has no {CONFIG})") from None
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read {run_dir / CONFIG}: {' '.join(str(e).split())}") from None
    if not isinstance(config, dict) or "gdlab" not in config:
        raise ValueError(f"{run_dir} is not a gdlab run folder (its {CONFIG} was not written "
                         f"by gdlab)")
    return config


def read_fit_config(path) -> dict:
    """The settings of a ``gdlab fit`` run folder, checked for what ``--resume`` needs."""
    config = read_config(path)
    if config.get("command") != "fit":
        raise ValueError(f"{path} holds the output of gdlab {config.get('command', '?')}, not "
                         f"of gdlab fit: only a fit run can be resumed")
    missing = [key for key in REQUIRED if key not in config]
    if missing:
        raise ValueError(f"{Path(path) / CONFIG} lacks {', '.join(missing)}: it cannot be "
                         f"resumed")
    return config


def clamp_batch_size(batch_size: int, m: int, on_message=None) -> int:
    """The documented rule for run settings: a mini-batch larger than the m training examples
    is clamped to m (batch gradient descent), and ``on_message(text)`` (default:
    ``warnings.warn``) says so."""
    if batch_size <= m:
        return batch_size
    import warnings

    say = on_message or (lambda text: warnings.warn(text, stacklevel=2))
    say(f"--batch-size {batch_size} is larger than the {m} training examples; "
        f"using {m} (batch gradient descent)")
    return m


def check_settings(settings: dict) -> dict:
    """Validate a run's settings before anything is written; returns the optimizer's
    hyperparameters. ValueError says what is wrong."""
    from .._checks import check_choice, check_positive, check_positive_int
    from ..optim import OPTIMIZERS
    from .divergence import check_divergence_options

    missing = [key for key in REQUIRED if key not in settings]
    if missing:
        raise ValueError(f"the settings lack {', '.join(missing)}")
    if settings["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {settings['optimizer']!r}; allowed: "
                         f"{', '.join(OPTIMIZERS)}")
    hyper = dict(settings["hyperparameters"] or {})
    allowed = HYPERPARAMETERS[settings["optimizer"]]
    for name in hyper:
        if name not in allowed:
            takes = ", ".join("--" + a for a in allowed) or "none of them"
            raise ValueError(f"--{name} does not apply to {settings['optimizer']} (it takes "
                             f"{takes})")
    check_positive("lr", settings["lr"])
    check_positive_int("epochs", settings["epochs"])
    check_positive_int("batch_size", settings["batch_size"])
    if settings["checkpoint_every"] is not None:  # None: every 10 epochs, at most one a second
        check_positive_int("checkpoint_every", settings["checkpoint_every"])
    check_choice("on_divergence", settings["on_divergence"], ("stop", "reduce"))
    check_divergence_options(settings["on_divergence"], settings["divergence_factor"],
                             settings["reduce_factor"])
    return hyper


@dataclass
class FitRun:
    """A run folder set up to train: ``fit`` (the :class:`~gdlab.train.Fit`, state loaded from
    the checkpoint when resuming), its ``dataset``, the ``config`` written to config.json,
    ``resumed`` (a checkpoint was loaded), ``manual_lr`` (α set by hand on resuming, or None)
    and ``main_rank`` (this process writes the folder: rank 0 of a data-parallel run)."""

    out: Path
    fit: Fit
    dataset: Dataset | None  # None: a model and data of the user's (config "model", "data")
    config: dict
    resumed: bool
    manual_lr: float | None
    main_rank: bool
    lock: FolderLock | None = None  # rank 0 holds the folder until close()

    def close(self) -> None:
        """Give the run folder back (the end of the run's life in this process)."""
        if self.lock is not None:
            self.lock.release()

    def resume_note(self) -> str:
        """What a failed write leaves safe: the newest good checkpoint, and how to go on."""
        from .callbacks.checkpoint import CheckpointError, latest_checkpoint

        try:
            found = latest_checkpoint(self.out, on_message=lambda text: None)
        except CheckpointError:
            found = None
        if found is None:
            return f"no checkpoint was saved: gdlab fit --out {self.out} starts the run again"
        return (f"the checkpoint at epoch {found[0]['epoch_num']} is intact: gdlab fit --resume "
                f"{self.out} continues from there")

    @property
    def label(self) -> str:
        """``adam``, or ``adam + inverse_time`` with a schedule."""
        optimizer, schedule = self.config["optimizer"], self.config["schedule"]
        return optimizer if schedule == "constant" else f"{optimizer} + {schedule.split(':')[0]}"

    def train(self) -> Diverged | None:
        """Train to the last epoch. A divergence that stops the run is returned (the
        :class:`~gdlab.train.Diverged`; the model is the one before it), not raised, so that
        the results so far can still be written; None when the run finished."""
        from .divergence import Diverged

        try:
            self.fit.run()
        except Diverged as e:
            return e
        return None

    def write_results(self) -> None:
        """``history.csv``, ``events.json`` and ``model.safetensors`` (rank 0 only)."""
        if self.main_rank:
            described = {"model": self.config["model"]} if self.dataset is None else {
                "layers": ",".join(map(str, self.config["layers"])),
                "output": self.dataset.output}
            write_results(self.out, self.fit.history, self.fit.model, described)


def start_run(out, settings: dict, *, progress: bool = True,
              shard_optimizer_state: bool = False, on_message=None) -> FitRun:
    """Set up a new run in the folder ``out`` (created; what an earlier run of gdlab fit left
    there is removed) from ``settings``: the keys of ``REQUIRED`` (data, layers or None,
    optimizer, lr, epochs, batch_size, seed, dtype) and optionally those of ``DEFAULTS``
    (target, schedule text, hyperparameters like {"beta1": 0.9}, checkpoint_every,
    on_divergence, divergence_factor, reduce_factor). Everything is checked before the folder
    is touched; ``on_message(text)`` (default: ``warnings.warn``) gets the warnings."""
    settings = {**DEFAULTS, **settings}
    for key in ("data", "model", "loss"):  # a resume from another folder finds them too
        settings[key] = _absolute(settings[key])
    return _set_up(Path(out), settings, resuming=False, progress=progress,
                   shard_optimizer_state=shard_optimizer_state, on_message=on_message)


def resume_run(run_dir, *, epochs: int | None = None, lr: float | None = None,
               checkpoint_every: int | None = None, on_divergence: str | None = None,
               divergence_factor: float | None = None, reduce_factor: float | None = None,
               progress: bool = True, shard_optimizer_state: bool = False,
               on_message=None) -> FitRun:
    """Set up the run in ``run_dir`` to continue from its last checkpoint with the settings of
    its config.json. ``epochs`` may raise the number of epochs, ``lr`` sets α by hand (an
    event in the history); checkpoint_every, on_divergence, divergence_factor and
    reduce_factor replace the folder's when given.
    ``on_message(text)`` (default: ``warnings.warn``) gets the warnings."""
    changes = {"epochs": epochs, "checkpoint_every": checkpoint_every,
               "on_divergence": on_divergence, "divergence_factor": divergence_factor,
               "reduce_factor": reduce_factor}
    config = read_fit_config(run_dir)
    settings = {**DEFAULTS, **{k: v for k, v in config.items() if k not in ("gdlab", "command")}}
    if settings["schedule"] == "constant":  # how config.json writes "no schedule"
        settings["schedule"] = None
    settings.update({k: v for k, v in changes.items() if v is not None})
    return _set_up(Path(run_dir), settings, resuming=True, manual_lr=lr, progress=progress,
                   shard_optimizer_state=shard_optimizer_state, on_message=on_message)


def resume(run_dir, **options) -> Fit:
    """Continue the gdlab fit run in ``run_dir`` from its last checkpoint to its last epoch,
    exactly as ``gdlab fit --resume`` does (``options`` as :func:`resume_run`), and write its
    history.csv, events.json and model.safetensors; returns the finished Fit. A divergence
    raises :class:`~gdlab.train.Diverged` after the results so far are written; Ctrl-C raises
    KeyboardInterrupt with the checkpoint saved. (report.html is written by the command.)"""
    run = resume_run(run_dir, **options)
    try:
        failure = run.train()
        run.write_results()
    finally:
        run.close()
    if failure is not None:
        raise failure
    return run.fit


def _absolute(text):
    """A CSV/NPZ file's path, or the file of a SPEC (file.py:function), made absolute."""
    from .._spec import is_spec

    if not isinstance(text, str | Path):
        return text
    where, colon, name = str(text).rpartition(":") if is_spec(str(text)) else (str(text), "", "")
    if Path(where).suffix.lower() in (".csv", ".npz", ".py") and Path(where).exists():
        return str(Path(where).resolve()) + colon + name
    return text


def _set_up(out: Path, settings: dict, *, resuming: bool, manual_lr=None, progress: bool,
            shard_optimizer_state: bool, on_message) -> FitRun:
    """Check, build the model, the optimizer and the Fit, load the checkpoint, then write
    config.json (rank 0): nothing is written before everything is checked."""
    import torch

    from ..data.datasets import load_data
    from ..models import DTYPES, check_layers, default_layers, initial_model
    from ..optim import OPTIMIZERS
    from ..schedules import constant, parse_schedule
    from .distributed import is_main_process
    from .loop import Fit

    hyper = check_settings(settings)
    main_rank = is_main_process()
    dtype = DTYPES[settings["dtype"]]
    lr, schedule_text = settings["lr"], settings["schedule"]
    schedule = parse_schedule(schedule_text, lr) if schedule_text else constant(lr)
    if settings["model"] is not None:
        dataset, layers = None, None
        model, train, val, loss, batch_size = _own(settings)
        fingerprint = _fingerprint(train, val)
    else:
        dataset = load_data(settings["data"], target=settings["target"], seed=settings["seed"])
        layers = check_layers(settings["layers"], dataset) if settings["layers"] else \
            default_layers(dataset)
        batch_size = clamp_batch_size(settings["batch_size"], len(dataset.X_train), on_message)
        model = initial_model(dataset, layers, settings["seed"], dtype)
        train = (torch.as_tensor(dataset.X_train, dtype=dtype), torch.as_tensor(dataset.Y_train))
        val, loss = None, None
        fingerprint = _fingerprint((dataset.X_train, dataset.Y_train),
                                   (dataset.X_test, dataset.Y_test))
    optimizer = OPTIMIZERS[settings["optimizer"]](model.parameters(), lr=lr, **hyper)
    if resuming and settings.get("data_fingerprint", fingerprint) != fingerprint:
        raise ValueError(f"the data {settings['data']!r} changed since {out} started: "
                         f"resuming would not continue the same run")
    config = {**settings, "layers": layers, "schedule": schedule_text or "constant",
              "data_fingerprint": fingerprint}
    lock = lock_folder(out, "gdlab fit") if main_rank else None  # before the checkpoint is read
    try:
        found = _checkpoint(out, settings["epochs"], on_message) if resuming else None
        run = Fit(model, *train, optimizer, epochs=settings["epochs"], loss=loss, val=val,
                  batch_size=batch_size, schedule=schedule, seed=settings["seed"],
                  progress=progress, on_divergence=settings["on_divergence"],
                  divergence_factor=settings["divergence_factor"],
                  reduce_factor=settings["reduce_factor"], run_dir=out,
                  checkpoint_every=settings["checkpoint_every"],
                  shard_optimizer_state=shard_optimizer_state)
        if found is not None:
            try:
                run.load_state_dict(found)
            except ValueError as e:
                raise ValueError(f"the checkpoint in {out} does not match its config.json: "
                                 f"{e}") from None
        if manual_lr is not None:
            run.set_lr(manual_lr)  # checked: lr must be > 0
        _add_callbacks(run, dataset)
        if main_rank:
            if resuming:
                write_config(out, "fit", config)
            else:
                _clear(out, config)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return FitRun(out, run, dataset, config, found is not None, manual_lr, main_rank, lock)


def _checkpoint(out: Path, epochs: int, on_message) -> dict | None:
    """The state of the newest good checkpoint in ``out`` (None if it has none), checked
    against the number of epochs asked for."""
    from .callbacks.checkpoint import latest_checkpoint

    found = latest_checkpoint(out, on_message=on_message)
    done = found[0]["epoch_num"] if found else 0
    if epochs < done:
        raise ValueError(f"{out} has already trained {done} epochs: --epochs must be at least "
                         f"{done}, got {epochs}")
    return found[0] if found else None


def _own(settings):
    """(model, train, val, loss, batch_size) of a run of the user's model (a SPEC, called
    under the run's seed) on their data (a SPEC, or one of gdlab's sets as tensors)."""
    from .._spec import load_spec
    from ..data.batches import train_and_val
    from ..data.datasets import user_data
    from ..losses import named_loss
    from ..models import DTYPES, built_model

    model = built_model(load_spec(settings["model"], "--model"), settings["seed"])
    model = model.to(DTYPES[settings["dtype"]])
    data = user_data(settings["data"], target=settings["target"], seed=settings["seed"])
    train, val, loader_batch_size = train_and_val(data)
    return (model, train, val, named_loss(settings["loss"]),
            loader_batch_size or settings["batch_size"])


def _add_callbacks(run, dataset) -> None:
    """Record the training accuracy per epoch (history.csv's column; gdlab's own data) and
    print the divergences it recovers from, before the others; the live control
    (status.json) after all."""
    from ..models import accuracy
    from .callbacks.control import LiveControl

    def record_accuracy(fit):
        fit.history.metrics.setdefault("accuracy", []).append(
            accuracy(fit.model, dataset.X_train, dataset.Y_train, dataset.task))

    first = [record_accuracy] if dataset is not None else []
    run.callbacks[:0] = [*first, _EchoEvents(len(run.history.events))]
    run.callbacks = [c for c in run.callbacks if not isinstance(c, LiveControl)] + [
        c for c in run.callbacks if isinstance(c, LiveControl)]


class _EchoEvents:
    """Prints the divergences a run recovers from (on_divergence="reduce") as they happen."""

    def __init__(self, seen: int):
        self.seen = seen

    def on_epoch_end(self, run) -> None:
        from tqdm import tqdm

        events = run.history.events
        for event in events[self.seen:]:
            if event.get("event") == "diverged":
                tqdm.write(f"gdlab: {event['message']}", file=sys.stdout)
        self.seen = len(events)


def _fingerprint(*parts) -> str | None:
    """A short hash of the data — (X, Y) pairs of arrays or tensors, the training data and the
    test or validation data — to tell whether it changed; None for data that is not arrays
    (a Dataset, a DataLoader)."""
    import hashlib

    import numpy as np

    arrays = [a for part in parts if part is not None for a in part]
    if not all(hasattr(a, "shape") for a in arrays):
        return None
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array.cpu() if hasattr(array, "cpu") else array)
        digest.update(str((array.dtype, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def _clear(run_dir: Path, config: dict) -> None:
    """Make ``run_dir`` the folder of a new run: remove what an earlier run left there (only
    the files gdlab fit writes) and write ``config.json``."""
    from .callbacks.checkpoint import CHECKPOINT, PREVIOUS

    run_dir.mkdir(parents=True, exist_ok=True)
    for name in (CHECKPOINT, PREVIOUS, *RUN_FILES):
        (run_dir / name).unlink(missing_ok=True)
    write_config(run_dir, "fit", config)


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # "nan", "inf": JSON has no such numbers
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def write_results(run_dir: Path, history, model, described: dict) -> None:
    """``history.csv``, ``events.json`` and ``model.safetensors`` (its metadata
    ``described``: the MLP's layers and output, or the model's SPEC), each atomically."""
    from safetensors.torch import save

    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    validation = [name for name in ("val_cost", "val_accuracy") if name in history.metrics]
    writer.writerow(["epoch", "cost", "lr", "accuracy", "time", *validation])
    columns = [history.metrics.get(name, []) for name in ("accuracy", *validation)]

    def cell(values, i):
        return repr(values[i]) if i < len(values) and values[i] is not None else ""

    for i, cost in enumerate(history.epoch_costs):
        writer.writerow([i + 1, repr(cost), repr(history.lrs[i]), cell(columns[0], i),
                         f"{history.times[i]:.6f}", *(cell(c, i) for c in columns[1:])])
    atomic_write(run_dir / HISTORY, text.getvalue())
    atomic_write(run_dir / EVENTS, json.dumps(_json_safe(history.events), indent=1,
                                                  ensure_ascii=False) + "\n")
    weights = {name: tensor.detach().clone().contiguous()
               for name, tensor in model.state_dict().items()}
    atomic_write(run_dir / WEIGHTS, save(weights, metadata=described))
