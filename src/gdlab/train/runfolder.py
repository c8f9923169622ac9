"""The run folder of ``gdlab fit``: what is in it, how a new run starts there, how its
results are written (each file atomically) and how ``--resume`` reads its settings back.

    config.json          the settings (written first: ``--resume`` rebuilds the run from it)
    checkpoint.pt        the latest checkpoint, checkpoint.prev.pt the one before
    status.json          state, epoch, smoothed cost, α, ETA (``gdlab status``)
    control.json         α requests from ``gdlab lr``
    history.csv          one row per epoch: epoch, cost, lr, accuracy, time
    events.json          manual α changes and divergences, as in History.events
    model.safetensors    the weights
    report.html, *.png, minibatch_costs.csv   the report
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from .._files import CONFIG, atomic_write, write_config
from .callbacks.checkpoint import CHECKPOINT, PREVIOUS
from .callbacks.control import CONTROL, STATUS

HISTORY = "history.csv"
EVENTS = "events.json"
WEIGHTS = "model.safetensors"
#: everything a run of gdlab fit writes; a new run removes these first (and nothing else)
RUN_FILES = (CHECKPOINT, PREVIOUS, STATUS, CONTROL, HISTORY, EVENTS, WEIGHTS, "report.html",
             "minibatch_costs.csv", "cost_per_iteration.png", "epoch_cost.png",
             "learning_rate.png", "decision_boundary.png")
#: the settings --resume needs from config.json
REQUIRED = ("data", "layers", "optimizer", "lr", "epochs", "batch_size", "seed", "dtype")


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


def start(run_dir: Path, config: dict) -> None:
    """Make ``run_dir`` the folder of a new run: remove what an earlier run left there (only
    the files gdlab fit writes) and write ``config.json``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
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


def write_results(run_dir: Path, history, model, *, layers, output: str) -> None:
    """``history.csv``, ``events.json`` and ``model.safetensors``, each atomically."""
    from safetensors.torch import save

    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(["epoch", "cost", "lr", "accuracy", "time"])
    accuracies = history.metrics.get("accuracy", [])
    for i, cost in enumerate(history.epoch_costs):
        acc = accuracies[i] if i < len(accuracies) else None
        writer.writerow([i + 1, repr(cost), repr(history.lrs[i]),
                         "" if acc is None else repr(acc), f"{history.times[i]:.6f}"])
    atomic_write(run_dir / HISTORY, text.getvalue())
    atomic_write(run_dir / EVENTS, json.dumps(_json_safe(history.events), indent=1,
                                                  ensure_ascii=False) + "\n")
    weights = {name: tensor.detach().clone().contiguous()
               for name, tensor in model.state_dict().items()}
    atomic_write(run_dir / WEIGHTS, save(weights, metadata={
        "layers": ",".join(map(str, layers)), "output": output}))
