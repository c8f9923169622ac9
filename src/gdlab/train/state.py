"""A run's state as plain values and tensors (``torch.load(..., weights_only=True)`` reads it
back): deep copies, and every random-number generator a run draws from."""

from __future__ import annotations

import random

import numpy as np
import torch

#: format of Fit.state_dict(), checked when a state is loaded
STATE_FORMAT = 1


def cloned(value, memo=None):
    """A deep copy of nested dicts/lists/tuples with every tensor cloned — once: a tensor held
    under two names (a state under gdlab's and torch's keys) is one copy under both."""
    memo = {} if memo is None else memo
    if isinstance(value, torch.Tensor):
        copy = memo.get(id(value))
        if copy is None:
            copy = memo[id(value)] = value.detach().clone()
        return copy
    if isinstance(value, dict):
        return {k: cloned(v, memo) for k, v in value.items()}
    if isinstance(value, list):
        return [cloned(v, memo) for v in value]
    if isinstance(value, tuple):
        return tuple(cloned(v, memo) for v in value)
    return value


def rng_state(generator, local: bool = False) -> dict:
    """torch's, the shuffle generator's, numpy's and Python's RNG states as tensors and plain
    values (for weights_only loading); ``local``: numpy's and Python's as they come, for a
    snapshot in memory (no conversion: a snapshot is taken every epoch)."""
    state = {"torch": torch.get_rng_state(),
             "generator": generator.get_state() if generator is not None else None}
    if local:
        state.update(numpy_local=np.random.get_state(legacy=True), python_local=random.getstate())
    else:
        name, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
        version, internal, gauss_next = random.getstate()
        state.update(numpy={"name": str(name), "keys": torch.from_numpy(keys.astype(np.int64)),
                            "pos": int(pos), "has_gauss": int(has_gauss),
                            "cached_gaussian": float(cached_gaussian)},
                     python={"version": version, "state": list(internal),
                             "gauss_next": gauss_next})
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, generator) -> None:
    torch.set_rng_state(state["torch"])
    if generator is not None and state["generator"] is not None:
        generator.set_state(state["generator"])
    if "numpy_local" in state:
        np.random.set_state(state["numpy_local"])
        random.setstate(state["python_local"])
    else:
        n, p = state["numpy"], state["python"]
        np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                             n["has_gauss"], n["cached_gaussian"]))
        random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _one_line(error) -> str:
    return " ".join(str(error).split())[:300]


def run_state(run, local: bool = False) -> dict:
    """Everything a :class:`~gdlab.train.loop.Fit` needs to continue bit for bit, but its
    history. ``local``: for an in-memory snapshot; a sharded optimizer then saves this rank's
    shard only (no collective)."""
    schedule_state = getattr(run.learning_rate.schedule, "state_dict", None)
    if local and run.sharded:
        optimizer_state = {"zero_local": cloned(run.optimizer.optim.state_dict())}
    else:
        optimizer_state = cloned(run.optimizer.state_dict())
    return {
        "format": STATE_FORMAT, "epoch_num": run.epoch_num, "t": run.t,
        "epochs": run.epochs, "m": run.m, "batch_size": run.batch_size,
        "model": {k: v.detach().clone() for k, v in run.model.state_dict().items()},
        "optimizer": optimizer_state,
        "schedule": cloned(schedule_state()) if callable(schedule_state) else None,
        **run.learning_rate.state_dict(),
        "initial_cost": run.guard.initial_cost if run.guard is not None else None,
        "smoothed_cost": run.smoothed_cost.state_dict(),
        "rng": rng_state(run.generator, local),
    }


def load_run_state(run, state) -> None:
    """Continue ``run`` from ``state`` (:func:`run_state`); ValueError if it does not fit."""
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError("not the state of a gdlab fit (format "
                         f"{state.get('format') if isinstance(state, dict) else '?'}, "
                         f"expected {STATE_FORMAT})")
    if (state["m"], state["batch_size"]) != (run.m, run.batch_size):
        raise ValueError(f"the saved run trained on m = {state['m']} examples in "
                         f"mini-batches of {state['batch_size']}; this one has m = {run.m} "
                         f"and batch_size = {run.batch_size}: it would not continue the "
                         f"same run")
    try:
        run.model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise ValueError(f"the saved state does not fit this model: {_one_line(e)}") from None
    try:
        if "zero_local" in state["optimizer"]:
            run.optimizer.optim.load_state_dict(cloned(state["optimizer"]["zero_local"]))
        else:
            run.optimizer.load_state_dict(cloned(state["optimizer"]))
    except (ValueError, KeyError, RuntimeError) as e:
        raise ValueError(f"the saved optimizer state does not fit this optimizer: "
                         f"{_one_line(e)}") from None
    load_schedule = getattr(run.learning_rate.schedule, "load_state_dict", None)
    if state["schedule"] is not None and callable(load_schedule):
        load_schedule(cloned(state["schedule"]))
    run.epoch_num, run.t = int(state["epoch_num"]), int(state["t"])
    run.learning_rate.load_state_dict(state)
    if run.guard is not None:
        run.guard.initial_cost = state.get("initial_cost")
    run.smoothed_cost.load_state_dict(state["smoothed_cost"])
    set_rng_state(state["rng"], run.generator)

