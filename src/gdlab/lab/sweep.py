"""``gdlab sweep``: search α, β, β₁, β₂, ε, the mini-batch size, the decay and the optimizer.

A **search space** maps each hyperparameter to its values:

- a range ``low:high`` — sampled on a log scale, as the lecture advises: α, ε and decay_rate
  log-uniformly; β, β₁, β₂ through 1-β log-uniformly (so 0.9 … 0.999 spreads evenly over the
  averaging windows 10 … 1000); batch_size over the powers of two between low and high;
- a list ``a,b,c`` of values (optimizer and schedule names too).

Searches: ``grid`` (ranges cut into ``points`` values), ``random`` (``trials`` samples) — both
trained **vectorized**, every configuration sharing an optimizer and a mini-batch size in one
batched run (:mod:`gdlab.lab.vectorized`) — and ``tpe`` (Optuna's TPE sampler with median
pruning of hopeless runs on the smoothed cost; trials run one by one and may run on many
machines that share the study's storage). Any ``nn.Module`` may be swept: tensors X, Y or
a Dataset, with a cost of your own (``loss=``) or the one gdlab infers. A model whose forward
``torch.func.vmap`` cannot run (BatchNorm in training mode, other in-place changes; found by
one trial step, :func:`~gdlab.lab.vectorized.why_not_vectorized`) or data that are not
tensors are trained one by one instead, and the message says so.

Runs are ranked by their **validation cost** (``val=``: data they do not train on) at the last
epoch, or by their final epoch cost when there is no validation data (:func:`ranked_by`);
:func:`write_results` writes results.csv (both costs and the validation accuracy),
config.json, the figures and the report.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._checks import check_beta, check_nonnegative, check_positive
from .._files import atomic_write, write_config
from ..optim import OPTIMIZERS
from ..schedules import SCHEDULES, parse_schedule
from .vectorized import NUMERIC, fit_many, why_not_vectorized

NAMES = ("optimizer", "lr", "beta", "beta1", "beta2", "eps", "batch_size", "schedule",
         "decay_rate")
LOG = ("lr", "eps", "decay_rate")  # sampled log-uniformly
BETAS = ("beta", "beta1", "beta2")  # sampled through 1-β log-uniformly
METHODS = ("grid", "random", "tpe")
#: the check of each number a dimension may hold (a range's ends, a list's values)
CHECKS = {"lr": check_positive, "eps": check_nonnegative, "decay_rate": check_nonnegative,
          **dict.fromkeys(BETAS, check_beta)}


@dataclass
class Range:
    low: float
    high: float


def _number(name, text):
    text = str(text).strip()
    match = re.fullmatch(r"2\^(\d+)", text)
    try:
        return 2 ** int(match.group(1)) if match else float(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a number") from None


def parse_dimension(name: str, value):
    """One dimension from the command line (``"1e-4:1e-1"``, ``"0.9,0.99"``) or a file (a
    list, a number, or a table {low, high}); returns a :class:`Range` or a list of values."""
    if name not in NAMES:
        raise ValueError(f"unknown hyperparameter {name!r}; allowed: {', '.join(NAMES)}")
    if isinstance(value, dict):
        if set(value) != {"low", "high"}:
            raise ValueError(f"{name}: a range is {{low, high}}, got keys {sorted(value)}")
        value = f"{value['low']}:{value['high']}"
    if name in ("optimizer", "schedule"):
        values = value if isinstance(value, list) else str(value).split(",")
        values = [str(v).strip() for v in values if str(v).strip()]
        allowed = list(OPTIMIZERS) if name == "optimizer" else ["none", *SCHEDULES]
        for v in values:
            if v.split(":")[0] not in allowed:
                raise ValueError(f"unknown {name} {v!r}; allowed: {', '.join(allowed)}")
        return values
    if isinstance(value, list | tuple):
        values = [_number(name, v) for v in value]
    elif isinstance(value, int | float):
        values = [float(value)]
    elif ":" in str(value):
        low, high = (_number(name, v) for v in str(value).split(":", 1))
        if not 0 < low <= high:
            raise ValueError(f"{name}: a range low:high needs 0 < low <= high, got {value!r}")
        if name in BETAS and high >= 1:
            raise ValueError(f"{name}: β must be in [0, 1), got the range {value!r}")
        if name == "batch_size":
            return [2**k for k in range(math.ceil(math.log2(low)), int(math.log2(high)) + 1)]
        return Range(low, high)
    else:
        values = [_number(name, v) for v in str(value).split(",") if v.strip()]
    if not values:
        raise ValueError(f"{name}: no values given")
    if name in CHECKS:
        for v in values:
            CHECKS[name](name, v)
    if name == "batch_size":
        if any(v != int(v) or v < 1 for v in values):
            raise ValueError(f"batch_size values must be positive integers, got {values}")
        values = [int(v) for v in values]
    return values


def parse_space(items: dict) -> dict:
    """A search space from {name: text or value}; missing optimizer/lr get adam and 1e-4:1e-1.
    Each schedule is checked with the space's decay rates, so that a bad one fails here, before
    any trial runs."""
    space = {name: parse_dimension(name, value) for name, value in items.items()
             if value is not None}
    space.setdefault("optimizer", ["adam"])
    space.setdefault("lr", Range(1e-4, 1e-1))
    rates = space.get("decay_rate")
    rates = [rates.low, rates.high] if isinstance(rates, Range) else rates or [None]
    for schedule in space.get("schedule", []):
        for rate in rates:
            text = make_config({"lr": 1.0, "schedule": schedule,
                                **({} if rate is None else {"decay_rate": rate})}, 1)["schedule"]
            if text is not None:
                parse_schedule(text, 1.0)
    return space


def read_space(path) -> dict:
    """The search-space part of a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file: keys as
    :data:`NAMES` (and ``batch-size`` for ``batch_size``); other keys are returned apart as
    settings. Returns (items, settings)."""
    from pathlib import Path

    path = Path(path)
    text = path.read_text()
    if path.suffix.lower() == ".toml":
        import tomllib

        data = tomllib.loads(text)
    elif path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text) or {}
    else:
        raise ValueError(f"--space {path}: expected a .toml, .yaml or .yml file")
    if not isinstance(data, dict):
        raise ValueError(f"--space {path}: expected a table of hyperparameters")
    data = {k.replace("-", "_"): v for k, v in data.items()}
    items = {k: v for k, v in data.items() if k in NAMES}
    return items, {k: v for k, v in data.items() if k not in NAMES}


def _points(name, r: Range, n: int) -> list[float]:
    if name in BETAS:
        return [float(1 - x) for x in np.geomspace(1 - r.high, 1 - r.low, n)][::-1]
    if name in LOG:
        return [float(x) for x in np.geomspace(r.low, r.high, n)]
    return [float(x) for x in np.linspace(r.low, r.high, n)]


def _sample(name, r: Range, rng) -> float:
    if name in BETAS:
        return float(1 - math.exp(rng.uniform(math.log(1 - r.high), math.log(1 - r.low))))
    if name in LOG:
        return float(math.exp(rng.uniform(math.log(r.low), math.log(r.high))))
    return float(rng.uniform(r.low, r.high))


def make_config(values: dict, batch_size: int) -> dict:
    """A training configuration from drawn values: hyperparameters the optimizer does not take
    are dropped, and decay_rate goes into the schedule string."""
    optimizer = values.get("optimizer", "adam")
    config = {"optimizer": optimizer, "lr": float(values["lr"])}
    for name in NUMERIC[optimizer]:
        if name in values:
            config[name] = float(values[name])
    schedule = values.get("schedule", "none")
    if schedule in (None, "none"):
        schedule = None
    elif "decay_rate" in values and ":" not in schedule:
        schedule = f"{schedule}:decay_rate={values['decay_rate']:.6g}"
    config["schedule"] = schedule
    config["batch_size"] = int(values.get("batch_size", batch_size))
    return config


def grid(space: dict, points: int = 3, batch_size: int = 64) -> list[dict]:
    """Every combination; each range is cut into ``points`` values on its sampling scale."""
    names = list(space)
    axes = [_points(n, v, points) if isinstance(v, Range) else v for n, v in
            ((n, space[n]) for n in names)]
    configs, seen = [], set()
    for combo in itertools.product(*axes):
        config = make_config(dict(zip(names, combo, strict=True)), batch_size)
        key = repr(sorted(config.items()))
        if key not in seen:
            seen.add(key)
            configs.append(config)
    return configs


def random_configs(space: dict, trials: int, seed: int = 0, batch_size: int = 64) -> list[dict]:
    rng = np.random.default_rng(seed)
    configs = []
    for _ in range(trials):
        values = {n: _sample(n, v, rng) if isinstance(v, Range) else v[rng.integers(len(v))]
                  for n, v in space.items()}
        configs.append(make_config(values, batch_size))
    return configs


@dataclass
class Trial:
    config: dict
    final_cost: float
    history: object = None
    model: object = None
    number: int | None = None
    state: str = "complete"  # or "pruned"
    extra: dict = field(default_factory=dict)
    val_cost: float | None = None  # J on the validation data at the last epoch (None: none)
    val_accuracy: float | None = None

    @property
    def score(self) -> float:
        """What the ranking compares: the validation cost where there is one, else the final
        epoch cost."""
        return self.final_cost if self.val_cost is None else self.val_cost


def ranked_by(trials: list) -> str:
    """"val_cost" when some trial has a validation cost, else "final_cost"."""
    return "val_cost" if any(t.val_cost is not None for t in trials) else "final_cost"


def rank(trials: list) -> list:
    """Best first: lowest validation cost (or final cost without validation data, see
    :func:`ranked_by`); non-finite (diverged) and pruned runs last."""
    by = ranked_by(trials)

    def key(trial):
        cost = getattr(trial, by)
        finite = cost is not None and math.isfinite(cost) and trial.state == "complete"
        return (not finite, cost if finite else math.inf)

    return sorted(trials, key=key)


def _last(history, name):
    values = history.metrics.get(name)
    return float(values[-1]) if values else None


def _trial(config, history, model, number) -> Trial:
    cost = history.epoch_costs[-1] if history.epoch_costs else math.inf
    val_cost = _last(history, "val_cost")
    return Trial(config, cost if math.isfinite(cost) else math.inf, history, model,
                 number=number, val_accuracy=_last(history, "val_accuracy"),
                 val_cost=None if val_cost is None else
                 (val_cost if math.isfinite(val_cost) else math.inf))


def train_one(model, data: tuple, config: dict, *, epochs: int, seed: int = 0, loss=None,
              val=None, callbacks=()):
    """One configuration trained alone with :class:`~gdlab.train.Fit` from a copy of
    ``model`` (``data``: fit's data arguments, (X, Y) or (dataset,)); torch's RNG seeded with
    ``seed`` (the same dropout masks for every configuration). Returns (history, network)."""
    import copy

    import torch

    from ..schedules import constant, parse_schedule
    from ..train import Fit

    net = copy.deepcopy(model)
    hyper = {k: config[k] for k in NUMERIC[config["optimizer"]] if k in config}
    opt = OPTIMIZERS[config["optimizer"]](net.parameters(), lr=config["lr"], **hyper)
    schedule = parse_schedule(config["schedule"], config["lr"]) if config.get("schedule") \
        else constant(config["lr"])
    m = len(data[0])
    torch.manual_seed(seed)
    history = Fit(net, *data, opt, epochs=epochs, batch_size=min(config["batch_size"], m),
                  schedule=schedule, seed=seed, progress=False, callbacks=list(callbacks),
                  loss=loss, val=val).run()
    return history, net


def _trial_bar(total: int, progress: bool):
    """A progress bar over trials on a terminal (tqdm decides: none when output is piped)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="trial", disable=None if progress else True, leave=False)


def run_vectorized(model, X, Y, configs, *, epochs: int, seed: int = 0, progress: bool = True,
                   loss=None, val=None, on_message=None) -> list[Trial]:
    """Train ``configs``; those sharing a batch size (and optimizer) in one batched run. With
    ``progress``, a bar on a terminal counts the trials done. ``val``: validation tensors
    (X_val, Y_val). A model :func:`~gdlab.lab.vectorized.why_not_vectorized` refuses, or a
    Dataset as X (Y None), is trained one configuration at a time instead (:func:`train_one`),
    and ``on_message`` (default: a warning) gets one line saying why."""
    reason = "the data is not tensors X, Y" if Y is None else \
        why_not_vectorized(model, X, Y, loss=loss)
    if reason is not None:
        message = f"cannot train the configurations vectorized: {reason}; training them one " \
                  f"by one"
        if on_message is None:
            import warnings

            warnings.warn(message, stacklevel=2)
        else:
            on_message(message)
        return _run_one_by_one(model, (X,) if Y is None else (X, Y), configs, epochs=epochs,
                               seed=seed, progress=progress, loss=loss, val=val)
    by_size: dict = {}
    for index, config in enumerate(configs):
        by_size.setdefault(min(config["batch_size"], len(X)), []).append(index)
    trials = [None] * len(configs)
    with _trial_bar(len(configs), progress) as bar:
        for size, indices in by_size.items():
            group = [configs[i] for i in indices]
            histories, models = fit_many(model, X, Y, group, epochs=epochs, batch_size=size,
                                         seed=seed, loss=loss, val=val)
            for i, history, trained in zip(indices, histories, models, strict=True):
                trials[i] = _trial(configs[i], history, trained, i)
            bar.update(len(indices))
    return trials


def _run_one_by_one(model, data, configs, *, epochs, seed, progress, loss, val) -> list[Trial]:
    trials = []
    with _trial_bar(len(configs), progress) as bar:
        for i, config in enumerate(configs):
            history, net = train_one(model, data, config, epochs=epochs, seed=seed, loss=loss,
                                     val=val)
            trials.append(_trial(config, history, net, i))
            bar.update()
    return trials


def _postgres_driver() -> str | None:
    """An installed PostgreSQL driver for SQLAlchemy: its default one when installed (psycopg2
    in SQLAlchemy 2.0, psycopg 3 in 2.1), else the other."""
    import importlib.util

    from sqlalchemy.dialects import postgresql

    drivers = dict.fromkeys((postgresql.dialect.driver, "psycopg2", "psycopg"))
    return next((d for d in drivers if importlib.util.find_spec(d) is not None), None)


def storage_url(url: str):
    """``url`` as a SQLAlchemy URL: ``postgres://`` is read as ``postgresql://``, and a
    PostgreSQL URL without a driver (``postgresql://user@host/db``) gets the installed one."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"storage URL {url!r} is not a database URL like "
                         f"sqlite:///study.db or postgresql://user@host/db") from None
    if parsed.drivername in ("postgres", "postgresql"):
        driver = _postgres_driver()
        if driver is None:
            raise ValueError(f"storage {hide_password(url)} needs a PostgreSQL driver: "
                             f"pip install psycopg2-binary (or psycopg[binary])")
        parsed = parsed.set(drivername=f"postgresql+{driver}")
    return parsed


def hide_password(url: str) -> str:
    """``url`` with its password, if any, shown as ***."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL: nothing to hide that make_url can find
        return url


def storage(url: str):
    """An Optuna RDB storage. SQLite waits for the lock (workers on one machine); a server
    (PostgreSQL, MySQL) gets a connection timeout, so an unreachable host fails instead of
    hanging, and a liveness check before reusing a pooled connection, so a worker whose
    connection the server or a firewall dropped during a long trial reconnects."""
    import optuna

    parsed = storage_url(url)
    return optuna.storages.RDBStorage(parsed.render_as_string(hide_password=False),
                                      engine_kwargs=_engine_kwargs(parsed))


def _engine_kwargs(parsed) -> dict:
    """SQLAlchemy engine options for the storage (see :func:`storage`)."""
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return {"connect_args": {"timeout": 60}}
    if backend == "postgresql":
        return {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    return {"pool_pre_ping": True}


def _reason(error: BaseException) -> str:
    """The database's own message (psycopg2's, sqlite3's), without SQLAlchemy's SQL echo and
    background link."""
    text = str(getattr(error, "orig", None) or error)
    return " ".join(text.split()) or type(error).__name__


def _connect(url: str) -> None:
    """Raise a one-line ValueError when the storage cannot be reached at all (bad URL, no
    driver, server down, wrong password or database): errors a retry will not fix."""
    import sqlalchemy
    from sqlalchemy.exc import SQLAlchemyError

    parsed = storage_url(url)
    try:
        engine = sqlalchemy.create_engine(parsed, **_engine_kwargs(parsed))
    except (ImportError, SQLAlchemyError) as error:  # unknown dialect, driver not installed
        raise ValueError(f"storage {hide_password(url)}: {_reason(error)}") from None
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as error:
        raise ValueError(f"cannot connect to the storage {hide_password(url)}: "
                         f"{_reason(error)}") from None
    finally:
        engine.dispose()


def _open_study(url: str, attempts: int = 10, **kwargs):
    """Create or join the study. Workers that start together on a new database race to
    create its tables and the study (SQLite: "database is locked"; PostgreSQL: a duplicate
    key in pg_type or the studies table); the loser gets a database error and simply tries
    again. A storage that cannot be reached at all fails at once, in one line."""
    import random
    import time

    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    _connect(url)
    for attempt in range(attempts):
        try:
            return optuna.create_study(storage=storage(url), load_if_exists=True, **kwargs)
        except (SQLAlchemyError, optuna.exceptions.DuplicatedStudyError) as error:
            if attempt == attempts - 1:
                raise ValueError(f"could not create or join the study in "
                                 f"{hide_password(url)} after {attempts} attempts: "
                                 f"{_reason(error)}") from error
            time.sleep(0.2 + random.random() * 0.5)


def run_optuna(model, X, Y, space: dict, *, trials: int, epochs: int, study: str,
               storage_url: str, seed: int = 0, sampler_seed: int | None = 0,
               batch_size: int = 64, prune: bool = True, progress: bool = True, loss=None,
               val=None):
    """Add ``trials`` trials to the Optuna study ``study`` in ``storage_url`` (created if
    new, joined if it exists: several workers may run this at once). Each trial trains one
    configuration with :func:`train_one` from ``model`` with ``seed`` (the same mini-batch
    order for every trial, so that they differ only in their hyperparameters) on X, Y (or a
    Dataset X, Y None), with ``loss`` (None: inferred); ``sampler_seed`` seeds TPE (None for
    workers that share a study, so that they propose different trials). The study minimizes
    the validation cost at the last epoch when ``val`` is given, else the final epoch cost.
    The median pruner stops runs whose validation cost (or smoothed cost: bias-corrected EWA
    of J^{t}, β = 0.98) is worse than the median of earlier trials at the same epoch. With
    ``progress``, a bar on a terminal counts this worker's trials. Returns the optuna study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=max(1, epochs // 5)) \
        if prune else optuna.pruners.NopPruner()
    sampler = optuna.samplers.TPESampler(seed=sampler_seed)
    the_study = _open_study(storage_url, study_name=study, sampler=sampler, pruner=pruner,
                            direction="minimize")
    data = (X,) if Y is None else (X, Y)

    def objective(trial):
        config = make_config(_suggest(trial, space), batch_size)
        trial.set_user_attr("config", config)

        def report(run):
            watched = _last(run.history, "val_cost") if val is not None else \
                run.smoothed_cost.current()
            if not math.isfinite(watched):
                run.stop()
                return
            trial.report(watched, run.epoch_num)
            if trial.should_prune():
                run.stop()
                trial.set_user_attr("pruned_at", run.epoch_num)

        history, net = train_one(model, data, config, epochs=epochs, seed=seed, loss=loss,
                                 val=val, callbacks=[report])
        if "pruned_at" in trial.user_attrs:
            raise optuna.TrialPruned()
        done = _trial(config, history, net, trial.number)
        trial.set_user_attr("final_cost", done.final_cost)
        if done.val_cost is not None:
            trial.set_user_attr("val_cost", done.val_cost)
            trial.set_user_attr("val_accuracy", done.val_accuracy)
        return done.score

    with _trial_bar(trials, progress) as bar:
        the_study.optimize(objective, n_trials=trials,
                           callbacks=[lambda study, trial: bar.update()])
    return the_study


def _suggest(trial, space: dict) -> dict:
    """The values of one Optuna trial drawn from ``space`` (β through 1-β, log scales)."""
    values = {}
    for name, dim in space.items():
        if isinstance(dim, Range) and name in BETAS:
            values[name] = 1 - trial.suggest_float(f"1-{name}", 1 - dim.high, 1 - dim.low,
                                                   log=True)
        elif isinstance(dim, Range):
            values[name] = trial.suggest_float(name, dim.low, dim.high, log=name in LOG)
        else:
            values[name] = trial.suggest_categorical(name, dim)
    return values


def study_trials(study) -> list[Trial]:
    """The study's finished trials (complete and pruned) as :class:`Trial`, ranked."""
    import optuna

    out = []
    for t in study.get_trials(deepcopy=False):
        if t.state == optuna.trial.TrialState.COMPLETE:
            attrs = t.user_attrs
            out.append(Trial(attrs["config"], attrs.get("final_cost", t.value), number=t.number,
                             val_cost=attrs.get("val_cost"),
                             val_accuracy=attrs.get("val_accuracy")))
        elif t.state == optuna.trial.TrialState.PRUNED and "config" in t.user_attrs:
            out.append(Trial(t.user_attrs["config"], math.inf, number=t.number, state="pruned"))
    return rank(out)


def fit_command(config: dict, *, data: str, layers, epochs: int, seed: int, dtype: str,
                target: str | None = None, out: str = "best-run", model: str | None = None,
                loss: str | None = None) -> str:
    """The ``gdlab fit`` command line that trains ``config`` alone: its α, β, β₁, β₂ and ε
    written exactly (the shortest digits that read back as the same float), so that it trains
    what the trial trained. ``model``/``loss``: the SPEC and --loss of a model of the user's
    (then no --layers)."""
    parts = ["gdlab fit"] + ([f"--model {model}"] if model else []) + [f"--data {data}"]
    if target:
        parts.append(f"--target {target}")
    if loss:
        parts.append(f"--loss {loss}")
    if not model:
        parts.append(f"--layers {','.join(map(str, layers))}")
    parts += [f"--optimizer {config['optimizer']}", f"--lr {config['lr']!r}"]
    parts += [f"--{name} {config[name]!r}" for name in NUMERIC[config["optimizer"]]
              if name in config]
    parts += [f"--epochs {epochs}", f"--batch-size {config['batch_size']}"]
    if config.get("schedule"):
        parts.append(f"--schedule {config['schedule']}")
    parts += [f"--seed {seed}", f"--dtype {dtype}", f"--out {out}"]
    return " ".join(parts)


COLUMNS = ("optimizer", "lr", "beta", "beta1", "beta2", "eps", "batch_size", "schedule")


def table(trials: list, limit: int | None = 20) -> str:
    """Ranked trials as a text table (only the hyperparameters some trial has)."""
    shown = trials if limit is None else trials[:limit]
    columns = [c for c in COLUMNS if any(c in t.config for t in shown)]

    def cell(config, name):
        value = config.get(name)
        if value is None:
            return "—" if name != "schedule" else "constant"
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    def number(value):
        if value is None:
            return "—"
        return f"{value:.6f}" if math.isfinite(value) else "diverged"

    with_val = ranked_by(trials) == "val_cost"
    accuracy = with_val and any(t.val_accuracy is not None for t in shown)
    rows = [("rank", *columns, "final cost", *(("val cost",) if with_val else ()),
             *(("val acc",) if accuracy else ()))]
    for i, t in enumerate(shown, 1):
        costs = ("pruned",) * (1 + with_val) if t.state == "pruned" else \
            (number(t.final_cost), *((number(t.val_cost),) if with_val else ()))
        rows.append((str(i), *(cell(t.config, c) for c in columns), *costs,
                     *((("—" if t.val_accuracy is None else f"{t.val_accuracy:.1%}"),)
                       if accuracy else ())))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(0, "ranked by validation cost (last epoch)" if with_val else
                 "ranked by final training cost (no validation data)")
    if limit is not None and len(trials) > limit:
        lines.append(f"... {len(trials) - limit} more in results.csv")
    return "\n".join(lines)


def figures(trials: list) -> list:
    """(file name, Figure, caption) for α vs final cost, β heatmaps and nothing else (the cost
    curves of the top runs are in the report)."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    from ..report.style import RC, optimizer_color

    done = [t for t in trials if t.state == "complete" and math.isfinite(t.score)]
    out = []
    if not done:
        return out
    what = "validation cost" if ranked_by(trials) == "val_cost" else "final cost"
    with rc_context(RC):
        fig = Figure(figsize=(6.5, 4))
        ax = fig.add_subplot()
        for name in dict.fromkeys(t.config["optimizer"] for t in done):
            mine = [t for t in done if t.config["optimizer"] == name]
            ax.scatter([t.config["lr"] for t in mine], [t.score for t in mine], s=18,
                       color=optimizer_color(name), label=name)
        ax.set_xscale("log")
        if all(t.score > 0 for t in done):
            ax.set_yscale("log")
        ax.set_xlabel("α (learning rate)")
        ax.set_ylabel(what)
        ax.set_title(f"Learning rate against {what}")
        ax.legend()
        fig.tight_layout()
        out.append(("alpha_vs_cost.png", fig, f"Learning rate α (log axis) against the {what} "
                    f"of every run."))
        for a, b in (("beta1", "beta2"), ("beta", "lr"), ("beta1", "lr"), ("beta2", "lr")):
            pairs = [(t.config[a], t.config[b], t.score) for t in done
                     if a in t.config and b in t.config]
            xs, ys = sorted({p[0] for p in pairs}), sorted({p[1] for p in pairs})
            if len(xs) < 2 or len(ys) < 2 or len(xs) * len(ys) > 400:
                continue
            grid_ = np.full((len(ys), len(xs)), np.nan)
            for x, y, c in pairs:
                i, j = ys.index(y), xs.index(x)
                grid_[i, j] = c if np.isnan(grid_[i, j]) else min(grid_[i, j], c)
            fig = Figure(figsize=(5.5, 4.2))
            ax = fig.add_subplot()
            image = ax.imshow(np.log10(grid_), origin="lower", aspect="auto", cmap="viridis_r")
            ax.set_xticks(range(len(xs)), [f"{x:.4g}" for x in xs], rotation=45)
            ax.set_yticks(range(len(ys)), [f"{y:.4g}" for y in ys])
            ax.set_xlabel(a)
            ax.set_ylabel(b)
            ax.grid(False)
            fig.colorbar(image, ax=ax, label=f"log₁₀ {what} (best per cell)")
            ax.set_title(f"{a} × {b}")
            fig.tight_layout()
            out.append((f"heatmap_{a}_{b}.png", fig, f"{what.capitalize()} over {a} × {b} (the "
                        f"best run of each cell, log scale)."))
            break
    return out


def results_csv(trials: list) -> str:
    """The ranked trials as CSV text: rank, number, state, final_cost, :data:`COLUMNS`,
    val_cost and val_accuracy (empty without validation data)."""
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["rank", "number", "state", "final_cost", *COLUMNS, "val_cost",
                     "val_accuracy"])
    for i, t in enumerate(trials, 1):
        writer.writerow([i, t.number, t.state, repr(t.final_cost),
                         *("" if t.config.get(c) is None else t.config[c] for c in COLUMNS),
                         *("" if v is None else repr(v) for v in (t.val_cost, t.val_accuracy))])
    return text.getvalue()


def write_results(out, trials: list, dataset=None, *, data: str, layers=None, epochs: int,
                  seed: int, dtype: str, method: str, target: str | None = None, top: int = 5,
                  model: str | None = None, loss: str | None = None) -> dict:
    """Write a sweep's folder ``out``: ``results.csv`` (every trial, ranked), ``config.json``
    (the settings, what the ranking compared, the best configuration and the ``gdlab fit``
    command that trains it), the figures of :func:`figures` and, when some of the ``top`` runs
    kept their history (vectorized or one-by-one searches), ``report.html`` with their curves
    — each file atomically. ``trials`` are ranked (:func:`rank`) and trained on ``dataset``
    (gdlab's own data: its train and test accuracy are reported), or, ``dataset`` None, on the
    data of the user's ``model`` SPEC (the validation accuracy is reported). Returns
    {"command": the best's gdlab fit command, "report": the report's path or None}."""
    from ..models import accuracy
    from ..report import write_report
    from .compare import data_summary
    from .runs import RunResult

    out = Path(out)
    best = trials[0]
    command = fit_command(best.config, data=data, layers=layers, epochs=epochs, seed=seed,
                          dtype=dtype, target=target, model=model, loss=loss)
    settings = {"data": data, **({"model": model, "loss": loss} if model else
                                 {"layers": layers}), "epochs": epochs, "method": method,
                "seed": seed}
    atomic_write(out / "results.csv", results_csv(trials))
    write_config(out, "sweep", {**settings, "ranked_by": ranked_by(trials),
                                "best": best.config, "best_cost": best.final_cost,
                                "best_val_cost": best.val_cost, "best_command": command})
    extra = figures(trials)
    shown = [t for t in trials[:top] if t.history is not None and math.isfinite(t.score)]
    if not shown:
        from .figures import save_figure

        for name, fig, _ in extra:
            save_figure(fig, out / name, dpi=120)
        return {"command": command, "report": None}

    def accuracies(t):
        if dataset is None:
            return None, t.val_accuracy
        return tuple(accuracy(t.model, X, Y, dataset.task) for X, Y in (
            (dataset.X_train, dataset.Y_train), (dataset.X_test, dataset.Y_test)))

    runs = [RunResult(optimizer=t.config["optimizer"], schedule=t.config["schedule"] or "constant",
                      label=f"#{rank} {t.config['optimizer']} α={t.config['lr']:.3g}",
                      history=t.history, model=t.model, seconds=t.history.times[-1],
                      train_accuracy=accuracies(t)[0], test_accuracy=accuracies(t)[1],
                      config=dict(t.config))
            for rank, t in enumerate(shown, 1)]
    where = dataset.name if dataset is not None else model
    report = write_report(out, runs, dataset if dataset is not None else data_summary(runs),
                          title=f"gdlab sweep — top {len(runs)} of {len(trials)} on {where}",
                          config=settings, extra_figures=extra)
    return {"command": command, "report": report}


__all__ = ["Range", "Trial", "parse_space", "read_space", "grid", "random_configs", "rank",
           "ranked_by", "train_one",
           "run_vectorized", "run_optuna", "study_trials", "fit_command", "table", "figures",
           "storage", "storage_url", "hide_password", "METHODS", "results_csv", "write_results"]
