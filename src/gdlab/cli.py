"""The ``gdlab`` command: ``compare`` (the main job), ``fit`` and ``course``.

Bad input is answered with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__
from ._files import write_config
from .lab.compare import DEFAULT_DECAY
from .optim import OPTIMIZERS


class CommandError(ValueError):
    """A problem with what the user asked for: printed as one line, exit status 2. ``prog``:
    the command it is about (e.g. "gdlab fit"), when argparse found it."""

    def __init__(self, message: str, prog: str | None = None):
        super().__init__(message)
        self.prog = prog


class RunFailed(Exception):
    """A run that could not finish (it diverged): printed as one line, exit status 1."""

    status = 1


class Parser(argparse.ArgumentParser):
    """argparse with errors on one line: ``gdlab fit: error: ... (see gdlab fit --help)``."""

    def error(self, message):
        raise CommandError(f"{message} (see {self.prog} --help)", prog=self.prog)


def _names(text: str, allowed, what: str) -> list[str]:
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise CommandError(f"--{what} needs at least one of {', '.join(allowed)}")
    for name in names:
        if name not in allowed:
            raise CommandError(f"unknown {what.rstrip('s')} {name!r}; allowed: "
                               f"{', '.join(allowed)}")
    return names


def _layers(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(n) for n in text.split(",")]
    except ValueError:
        raise CommandError(f"--layers must be comma-separated integers like 2,5,2,1, "
                           f"got {text!r}") from None


def _schedule(text: str | None) -> str | None:
    return None if text is None or text.strip().lower() in ("none", "constant", "") else text


MARKER = "config.json"


def prepare_out_dir(path: str, force: bool) -> Path:
    """Create the output folder; refuse one that holds something other than a gdlab output
    (recognized by its config.json with a "gdlab" key) unless ``force``."""
    out = check_out_dir(path, force)
    out.mkdir(parents=True, exist_ok=True)
    return out


def check_out_dir(path: str, force: bool) -> Path:
    """``prepare_out_dir`` without creating anything: the checks only."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {path!r} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        try:
            is_gdlab = "gdlab" in json.loads((out / MARKER).read_text())
        except (OSError, ValueError, TypeError):
            is_gdlab = False
        if not is_gdlab:
            raise CommandError(f"--out {path!r} exists and is not a gdlab output folder; "
                               f"choose another folder or add --force")
    return out


def _load(args):
    from .data.datasets import load_data

    return load_data(args.data, target=args.target, seed=args.seed)


def _table(runs) -> str:
    def percent(value):
        return "—" if value is None else f"{100 * value:.1f}%"

    rows = [("run", "final cost", "train acc", "test acc", "time (s)")]
    for run in runs:
        rows.append((run.label, f"{run.final_cost:.6f}", percent(run.train_accuracy),
                     percent(run.test_accuracy), f"{run.seconds:.2f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_compare(args) -> None:
    from .data.datasets import describe
    from .lab.compare import compare
    from .report import write_report

    optimizers = _names(args.optimizers, OPTIMIZERS, "optimizers")
    layers = _layers(args.layers)
    out = prepare_out_dir(args.out, args.force)
    dataset = _load(args)
    _batch_size(args.batch_size, len(dataset.X_train), "compare")  # compare clamps it too
    print(describe(dataset))
    runs = compare(dataset, layers=layers, optimizers=optimizers, lr=args.lr,
                   epochs=args.epochs, batch_size=args.batch_size,
                   decay=_schedule(args.schedule), seed=args.seed, dtype=args.dtype,
                   progress=not args.quiet)
    config = {"data": args.data, "layers": runs[0].model.layer_dims, "epochs": args.epochs,
              "batch_size": args.batch_size, "seed": args.seed, "dtype": args.dtype,
              "lr": args.lr if args.lr is not None else "per optimizer",
              "decay": _schedule(args.schedule) or "none"}
    write_config(out, "compare", config)
    report = write_report(out, runs, dataset, title=f"gdlab compare — {dataset.name}",
                          config=config)
    print(_table(runs))
    print(f"report: {report}")


#: what --resume may change; every other setting comes from the run folder's config.json
#: (--lr with --resume is a manual change of α, recorded in the history)
RESUME_OPTIONS = {"resume", "epochs", "quiet", "lr", "checkpoint_every", "on_divergence",
                  "divergence_factor", "reduce_factor", "nproc", "shard_optimizer_state"}
#: the optimizers' own hyperparameter options, as --beta, --beta1, --beta2, --eps
HYPERPARAMETERS = {"gd": (), "momentum": ("beta",), "rmsprop": ("beta2", "eps"),
                   "adam": ("beta1", "beta2", "eps")}


def _given(args) -> set[str]:
    """The destinations of the options written on the command line (abbreviations too)."""
    actions = args.parser._option_string_actions
    given = set()
    for token in args.argv:
        if token == "--":
            break
        if not token.startswith("-") or token == "-" or token[1:2].isdigit() or token[1:2] == ".":
            continue
        option = token.split("=", 1)[0]
        if option in actions:
            given.add(actions[option].dest)
            continue
        matches = [s for s in actions if s.startswith("--") and s.startswith(option)]
        if len(matches) == 1:
            given.add(actions[matches[0]].dest)
    return given


def _fit_settings(args) -> dict:
    """The settings of a new run, from the command line (checked, not yet validated)."""
    if args.out is None:
        raise CommandError("--out RUN_DIR is required (or --resume RUN_DIR to continue a run)")
    data = args.data
    if Path(data).suffix.lower() in (".csv", ".npz") and Path(data).exists():
        data = str(Path(data).resolve())  # --resume from another working folder finds it too
    hyper = {name: getattr(args, name) for name in ("beta", "beta1", "beta2", "eps")
             if getattr(args, name) is not None}
    return {"data": data, "target": args.target, "layers": _layers(args.layers),
            "optimizer": args.optimizer, "lr": args.lr, "schedule": _schedule(args.schedule),
            "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
            "dtype": args.dtype, "hyperparameters": hyper,
            "checkpoint_every": args.checkpoint_every, "on_divergence": args.on_divergence,
            "divergence_factor": args.divergence_factor, "reduce_factor": args.reduce_factor}


def _resume_settings(args) -> dict:
    from .train.runfolder import read_fit_config

    others = sorted(_given(args) - RESUME_OPTIONS)
    if others:
        names = ", ".join("--" + name.replace("_", "-") for name in others)
        raise CommandError(f"--resume continues a run with the settings in its config.json; "
                           f"besides it takes only --epochs, --lr (a manual change of α), "
                           f"--checkpoint-every, --on-divergence, --divergence-factor, "
                           f"--reduce-factor and --quiet; got {names}")
    config = read_fit_config(args.resume)
    settings = {"target": None, "schedule": None, "hyperparameters": {},
                "checkpoint_every": 10, "on_divergence": "stop", "divergence_factor": 10.0,
                "reduce_factor": 0.5}
    settings.update({k: v for k, v in config.items() if k not in ("gdlab", "command")})
    settings["schedule"] = _schedule(settings["schedule"])
    for name in _given(args) & {"epochs", "checkpoint_every", "on_divergence",
                                "divergence_factor", "reduce_factor"}:
        settings[name] = getattr(args, name)
    return settings


def _check_settings(s: dict) -> dict:
    """Validate a run's settings before anything is written; returns the optimizer's
    hyperparameters."""
    from ._checks import check_choice, check_positive, check_positive_int
    from .train.loop import check_divergence_options

    if s["optimizer"] not in OPTIMIZERS:
        raise CommandError(f"unknown optimizer {s['optimizer']!r}; allowed: "
                           f"{', '.join(OPTIMIZERS)}")
    hyper = dict(s["hyperparameters"] or {})
    allowed = HYPERPARAMETERS[s["optimizer"]]
    for name in hyper:
        if name not in allowed:
            takes = ", ".join("--" + a for a in allowed) or "none of them"
            raise CommandError(f"--{name} does not apply to {s['optimizer']} (it takes "
                               f"{takes})")
    check_positive("lr", s["lr"])
    check_positive_int("epochs", s["epochs"])
    check_positive_int("batch_size", s["batch_size"])
    check_positive_int("checkpoint_every", s["checkpoint_every"])
    check_choice("on_divergence", s["on_divergence"], ("stop", "reduce"))
    check_divergence_options(s["on_divergence"], s["divergence_factor"], s["reduce_factor"])
    return hyper


def _batch_size(requested: int, m: int, command: str) -> int:
    """The CLI's documented rule: a mini-batch larger than the m training examples is clamped
    to m (batch gradient descent), with a one-line warning on stderr."""
    if requested > m:
        print(f"gdlab {command}: warning: --batch-size {requested} is larger than the {m} "
              f"training examples; using {m} (batch gradient descent)", file=sys.stderr)
        return m
    return requested


def _fingerprint(dataset) -> str:
    """A short hash of the training and test data, to tell whether a file changed."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256()
    for array in (dataset.X_train, dataset.Y_train, dataset.X_test, dataset.Y_test):
        array = np.ascontiguousarray(array)
        digest.update(str((array.dtype, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


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


def _fit_worker(argv) -> None:
    """One worker of ``gdlab fit --nproc N`` (its process group is set up by launch)."""
    import os

    from .train.distributed import is_main_process

    if not is_main_process():
        sys.stdout = open(os.devnull, "w")  # rank 0 prints; every rank reports errors
    status = main(argv)
    if status:
        raise SystemExit(status)


def cmd_fit(args) -> None:
    from .train import distributed

    if args.nproc is not None:
        from ._checks import check_positive_int

        check_positive_int("nproc", args.nproc)
    if args.nproc and args.nproc > 1 and not distributed.init_from_env():
        try:
            distributed.launch(_fit_worker, args.nproc, args.argv)
        except distributed.LaunchFailed as e:
            raise RunFailed(f"data-parallel run failed: {e}") from None
        return
    distributed.init_from_env()  # under torchrun: this process is one rank
    _cmd_fit(args, distributed.is_main_process())


def _cmd_fit(args, main_rank: bool) -> None:
    import torch

    from .data.datasets import describe, load_data
    from .lab.compare import DTYPES, check_layers, default_layers, initial_model
    from .models import accuracy
    from .schedules import constant, parse_schedule
    from .train import runfolder
    from .train.callbacks.checkpoint import latest_checkpoint
    from .train.callbacks.control import LiveControl, read_status
    from .train.loop import Diverged, Fit

    resuming = args.resume is not None
    settings = _resume_settings(args) if resuming else _fit_settings(args)
    out = Path(args.resume) if resuming else check_out_dir(args.out, args.force)
    hyper = _check_settings(settings)
    try:
        status = read_status(out) if out.is_dir() and main_rank else None
    except ValueError:
        status = None
    if status is not None and status["alive"]:
        what = "stop it before resuming" if resuming else "choose another --out"
        raise CommandError(f"{out} is still running (process {status.get('pid')}): {what}")
    dtype = DTYPES[settings["dtype"]]

    # everything is checked before the run folder is touched
    dataset = load_data(settings["data"], target=settings["target"], seed=settings["seed"])
    layers = check_layers(settings["layers"], dataset) if settings["layers"] else \
        default_layers(dataset)
    batch_size = _batch_size(settings["batch_size"], len(dataset.X_train), "fit")
    lr, schedule_text = settings["lr"], settings["schedule"]
    schedule = parse_schedule(schedule_text, lr) if schedule_text else constant(lr)
    model = initial_model(dataset, layers, settings["seed"], dtype)
    optimizer = OPTIMIZERS[settings["optimizer"]](model.parameters(), lr=lr, **hyper)
    fingerprint = _fingerprint(dataset)
    if resuming and settings.get("data_fingerprint", fingerprint) != fingerprint:
        raise CommandError(f"the data {settings['data']!r} changed since {out} started: "
                           f"resuming would not continue the same run")
    config = {**settings, "layers": layers, "schedule": schedule_text or "constant",
              "data_fingerprint": fingerprint}
    found = None
    if resuming:
        found = latest_checkpoint(out, on_message=lambda text: print(
            f"gdlab fit: warning: {text}", file=sys.stderr))
        done = found[0]["epoch_num"] if found else 0
        if settings["epochs"] < done:
            raise CommandError(f"{out} has already trained {done} epochs: --epochs must be at "
                               f"least {done}, got {settings['epochs']}")

    def record_accuracy(run):
        run.history.metrics.setdefault("accuracy", []).append(
            accuracy(run.model, dataset.X_train, dataset.Y_train, dataset.task))

    X = torch.as_tensor(dataset.X_train, dtype=dtype)
    Y = torch.as_tensor(dataset.Y_train)
    run = Fit(model, X, Y, optimizer, epochs=settings["epochs"], batch_size=batch_size,
              schedule=schedule, seed=settings["seed"], progress=not args.quiet,
              on_divergence=settings["on_divergence"],
              divergence_factor=settings["divergence_factor"],
              reduce_factor=settings["reduce_factor"], run_dir=out,
              checkpoint_every=settings["checkpoint_every"],
              shard_optimizer_state=args.shard_optimizer_state)
    if found is not None:
        try:
            run.load_state_dict(found[0])
        except ValueError as e:
            raise CommandError(f"the checkpoint in {out} does not match its config.json: "
                               f"{e}") from None
    manual_lr = args.lr if resuming and "lr" in _given(args) else None
    if manual_lr is not None:
        run.set_lr(manual_lr)  # checked: lr must be > 0
    run.callbacks[:0] = [record_accuracy, _EchoEvents(len(run.history.events))]
    run.callbacks = [c for c in run.callbacks if not isinstance(c, LiveControl)] + [
        c for c in run.callbacks if isinstance(c, LiveControl)]  # status after the others
    if not main_rank:
        pass  # only rank 0 writes the run folder
    elif resuming:
        write_config(out, "fit", config)
    else:
        runfolder.start(out, config)
    print(describe(dataset))
    if resuming:
        if found is None:
            print(f"no checkpoint in {out} yet: starting it from epoch 0")
        elif run.epoch_num >= run.epochs:
            print(f"{out} has trained all {run.epochs} epochs: writing its results")
        else:
            print(f"resuming {out} at epoch {run.epoch_num} of {run.epochs}")
        if manual_lr is not None:
            print(f"α = {manual_lr:g} from the next mini-batch on (set by hand, recorded in "
                  f"events.json)")

    label = settings["optimizer"] if schedule_text is None else \
        f"{settings['optimizer']} + {schedule_text.split(':')[0]}"
    failure = None
    try:
        run.run()
    except Diverged as e:
        kept = f"epochs 1-{run.epoch_num}" if run.epoch_num else "the initial model"
        message = str(e).replace("on_divergence='reduce'", "--on-divergence reduce")
        failure = f"{message} (the run folder holds {kept})"
    except KeyboardInterrupt as e:
        detail = f" ({e})" if str(e) else ""
        raise KeyboardInterrupt(f"interrupted{detail}; checkpoint at epoch {run.epoch_num} "
                                f"saved; continue with: gdlab fit --resume {out}") from None
    if not main_rank:
        if failure is not None:
            raise RunFailed(failure)
        return
    try:
        _write_fit_results(out, run, dataset, settings, config, label, failure)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"interrupted while writing the results; the checkpoint holds "
                                f"epochs 1-{run.epoch_num}: gdlab fit --resume {out} writes "
                                f"them") from None


def _write_fit_results(out, run, dataset, settings, config, label, failure) -> None:
    from .lab.runs import RunResult
    from .models import accuracy
    from .report import write_report
    from .train import runfolder

    model, history = run.model, run.history
    lr, schedule_text = settings["lr"], settings["schedule"]
    result = RunResult(
        optimizer=settings["optimizer"], schedule=schedule_text or "constant", label=label,
        history=history, model=model, seconds=history.times[-1] if history.times else 0.0,
        train_accuracy=accuracy(model, dataset.X_train, dataset.Y_train, dataset.task),
        test_accuracy=accuracy(model, dataset.X_test, dataset.Y_test, dataset.task),
        config={"optimizer": settings["optimizer"], "lr": lr,
                "schedule": schedule_text or "constant", "epochs": settings["epochs"],
                "batch_size": settings["batch_size"], "seed": settings["seed"]})
    report_config = {k: config[k] for k in ("data", "target", "layers", "optimizer", "lr",
                                            "schedule", "epochs", "batch_size", "seed", "dtype")}
    if history.epoch_costs:
        write_report(out, [result], dataset, title=f"gdlab fit — {label} on {dataset.name}",
                     config=report_config)
    runfolder.write_results(out, history, model, layers=config["layers"],
                            output=dataset.output)
    if failure is not None:
        raise RunFailed(failure)
    acc = "" if result.train_accuracy is None else \
        f", train accuracy {result.train_accuracy:.4f}"
    test = "" if result.test_accuracy is None else f", test accuracy {result.test_accuracy:.4f}"
    print(f"{label}: final cost {result.final_cost:.6f}{acc}{test} in {result.seconds:.1f} s")
    print(f"run folder: {out}")


def cmd_lr(args) -> None:
    from ._checks import check_positive
    from .train.callbacks.control import read_status, request_lr
    from .train.runfolder import read_config

    check_positive("lr", args.lr)
    read_config(args.run_dir)
    try:
        status = read_status(args.run_dir)
    except ValueError:
        status = {"state": "not started", "alive": False}
    if not status["alive"]:
        state = status["state"] if status["state"] != "running" else "gone (killed or crashed)"
        raise CommandError(f"{args.run_dir} is not running (state: {state}): α can only be "
                           f"changed while its gdlab fit runs")
    request = request_lr(args.run_dir, args.lr, wait=args.wait)
    if request.get("epoch") is not None:
        print(f"{args.run_dir}: α = {request['lr']:.6g} from epoch {request['epoch']}, "
              f"mini-batch t = {request['t']}")
    else:
        print(f"{args.run_dir}: asked for α = {request['lr']:.6g}; not acknowledged within "
              f"{args.wait:g} s (see gdlab status {args.run_dir})")


def cmd_status(args) -> None:
    from .train.callbacks.control import format_status, read_status
    from .train.runfolder import read_config

    read_config(args.run_dir)
    status = read_status(args.run_dir)
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(f"run folder:     {args.run_dir}")
        print(format_status(status, args.run_dir))


def cmd_course(args) -> None:
    from .lab.course import DECAYS, run_course

    optimizers = _names(args.optimizer, ("gd", "momentum", "rmsprop", "adam"), "optimizer")
    decay_names = [d or "none" for d in DECAYS]
    decays = [None if d == "none" else d for d in _names(args.decay, decay_names, "decay")]
    print_fn = None if args.json else (lambda text: print(text, flush=True))
    result = run_course(optimizers=optimizers, decays=decays, epochs=args.epochs,
                        print_fn=print_fn, progress=not (args.json or args.quiet))
    if args.json:
        print(json.dumps(result, indent=2))


def build_parser() -> Parser:
    parser = Parser(prog="gdlab", description="The optimization methods of deep learning: "
                    "compare GD, Momentum, RMSProp and Adam, with and without learning-rate "
                    "decay, on real data, and see what they do.")
    parser.add_argument("--version", action="version", version=f"gdlab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def data_options(p, default_epochs):
        p.add_argument("--data", default="moons", help="built-in set (moons, circles, digits, "
                       "breast-cancer, iris) or a .csv/.npz file (default: moons)")
        p.add_argument("--target", help="CSV column holding the labels (default: the last)")
        p.add_argument("--layers", help="layer sizes n_x,n_h1,...,n_y (default: n_x,16,8,n_y)")
        p.add_argument("--epochs", type=int, default=default_epochs,
                       help=f"passes over the training data (default: {default_epochs})")
        p.add_argument("--batch-size", type=int, default=64,
                       help="mini-batch size: m gives batch GD, 1 gives SGD (default: 64)")
        p.add_argument("--seed", type=int, default=0, help="seed for the split, the "
                       "initialization and the mini-batch order (default: 0)")
        p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
        p.add_argument("--force", action="store_true",
                       help="write into --out even if it holds something else")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = commands.add_parser("compare", help="train GD, Momentum, RMSProp and Adam, with and "
                            "without decay, from the same start; print a table and write a "
                            "report", description="Train the same network from the same "
                            "initialization and mini-batch order with each optimizer, with "
                            "constant α and with a decay schedule; print a table and write "
                            "report.html, PNG figures and CSV histories.")
    data_options(p, 100)
    p.add_argument("--optimizers", default="gd,momentum,rmsprop,adam",
                   help="comma-separated subset of gd,momentum,rmsprop,adam")
    p.add_argument("--lr", type=float, help="one α for every optimizer (default: gd 0.1, "
                   "momentum 0.1, rmsprop 0.005, adam 0.005)")
    p.add_argument("--schedule", default=DEFAULT_DECAY,
                   help="the decay each optimizer is also run with, as name:key=value,... "
                   "(inverse_time, exponential, inverse_sqrt, staircase, plateau), or none")
    p.add_argument("--out", default="gdlab-report", help="report folder (default: "
                   "gdlab-report)")
    p.set_defaults(run=cmd_compare)

    p = commands.add_parser("fit", help="train one model and write its run folder",
                            description="Train one model and write config.json, history.csv, "
                            "model.safetensors, figures and report.html to --out.")
    data_options(p, 500)
    p.add_argument("--optimizer", default="adam", help="gd, momentum, rmsprop or adam "
                   "(default: adam)")
    p.add_argument("--lr", type=float, default=0.01, help="α, or α₀ of the schedule "
                   "(default: 0.01)")
    p.add_argument("--schedule", help="decay schedule as name:key=value,..., e.g. "
                   "inverse_time:decay_rate=1 (default: constant α)")
    p.add_argument("--beta", type=float, help="momentum's β (default: 0.9)")
    p.add_argument("--beta1", type=float, help="adam's β₁ (default: 0.9)")
    p.add_argument("--beta2", type=float, help="rmsprop's and adam's β₂ (default: rmsprop "
                   "0.9, adam 0.999)")
    p.add_argument("--eps", type=float, help="rmsprop's and adam's ε (default: 1e-8)")
    p.add_argument("--out", help="run folder to write")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its "
                   "last checkpoint, with the settings of its config.json (--epochs may raise "
                   "the number of epochs, --lr sets α by hand)")
    p.add_argument("--checkpoint-every", type=int, default=10, metavar="N",
                   help="save a checkpoint every N epochs (default: 10), and at the end and on "
                   "Ctrl-C")
    p.add_argument("--on-divergence", choices=("stop", "reduce"), default="stop",
                   help="when the cost becomes NaN/inf or explodes: restore the start of the "
                   "epoch and stop, or retry it with α cut by --reduce-factor (default: stop)")
    p.add_argument("--divergence-factor", type=float, default=10.0, metavar="F",
                   help="an epoch cost above F × the smoothed cost counts as exploding "
                   "(default: 10)")
    p.add_argument("--reduce-factor", type=float, default=0.5, metavar="F",
                   help="--on-divergence reduce multiplies α by F (default: 0.5)")
    p.add_argument("--nproc", type=int, metavar="N", help="data-parallel training in N local "
                   "processes (torch.distributed; each mini-batch is split across them, the "
                   "result equals one process); under torchrun, leave it out")
    p.add_argument("--shard-optimizer-state", action="store_true", help="data-parallel runs: "
                   "each process keeps its share of the optimizer's moments only "
                   "(ZeroRedundancyOptimizer)")
    p.set_defaults(run=cmd_fit, parser=p)

    p = commands.add_parser("lr", help="change α of a running gdlab fit from its next "
                            "mini-batch on", description="The lecture's manual decay: set α of "
                            "the gdlab fit running in RUN_DIR; it applies from the next "
                            "mini-batch and is recorded in the run's history.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the --out folder of the running fit")
    p.add_argument("lr", type=float, metavar="LR", help="the new α (> 0)")
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the run to "
                   "acknowledge (default: 10)")
    p.set_defaults(run=cmd_lr)

    p = commands.add_parser("status", help="epoch, smoothed cost, α and ETA of a run",
                            description="Show the state of the gdlab fit in RUN_DIR, running "
                            "or not: epoch, smoothed cost, α, elapsed time and ETA.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the --out folder of a gdlab fit")
    p.add_argument("--json", action="store_true", help="print status.json as JSON")
    p.set_defaults(run=cmd_status)

    p = commands.add_parser("course", help="the course's Optimization Methods experiment, "
                            "printed digit for digit", description="Reproduce the deep-learning "
                            "course's Optimization Methods assignment (moons, [2, 5, 2, 1], "
                            "5000 epochs) on gdlab's optimizers, schedules and mini-batches.")
    p.add_argument("--optimizer", default="gd,momentum,adam,rmsprop",
                   help="comma-separated subset of gd,momentum,adam,rmsprop")
    p.add_argument("--decay", default="none,update_lr,schedule_lr_decay",
                   help="comma-separated subset of none,update_lr,schedule_lr_decay")
    p.add_argument("--epochs", type=int, default=5000, help="default: 5000, as the course")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_course)
    from . import cli_data, cli_figures, cli_tune  # (here: they use this module's helpers)

    cli_figures.register(commands)  # figures, smooth, landscape, schedule
    cli_tune.register(commands)  # tune, sweep
    cli_data.register(commands)  # make-data
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        args.argv = argv
        args.run(args)
    except (CommandError, ValueError, TypeError, FileNotFoundError, PermissionError) as error:
        command = f"gdlab {args.command}" if "args" in locals() and args.command else \
            getattr(error, "prog", None) or "gdlab"
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"{command}: error: {message}", file=sys.stderr)
        return 2
    except RunFailed as error:
        print(f"gdlab {args.command}: {' '.join(str(error).split())}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt as error:
        command = f"gdlab {args.command}" if "args" in locals() and args.command else "gdlab"
        print(f"{command}: {' '.join(str(error).split()) or 'interrupted'}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
