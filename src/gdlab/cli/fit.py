"""``gdlab fit`` (one model, its run folder, ``--resume``), ``gdlab lr`` and ``gdlab status``.

The run itself is :mod:`gdlab.train.runfolder`'s: ``start_run``/``resume_run`` check the
settings and set the run up; this module turns options into settings and writes the report.
``lr`` and ``status`` read the run folder without torch, so they answer at once.
"""

from __future__ import annotations

import json
import sys

from .._files import WriteError
from .common import CommandError, RunFailed, _layers, _schedule, check_out_dir, data_options, warner

#: what --resume may change; every other setting comes from the run folder's config.json
#: (--lr with --resume is a manual change of α, recorded in the history)
RESUME_OPTIONS = {"resume", "epochs", "quiet", "lr", "checkpoint_every", "on_divergence",
                  "divergence_factor", "reduce_factor", "nproc", "shard_optimizer_state"}
#: the settings that --resume takes from the command line only when they are written there
RESUME_CHANGES = ("epochs", "lr", "checkpoint_every", "on_divergence", "divergence_factor",
                  "reduce_factor")


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


def _settings(args) -> dict:
    """The settings of a new run, from the command line (checked by start_run)."""
    hyper = {name: getattr(args, name) for name in ("beta", "beta1", "beta2", "eps")
             if getattr(args, name) is not None}
    return {"data": args.data, "target": args.target, "layers": _layers(args.layers),
            "optimizer": args.optimizer, "lr": args.lr, "schedule": _schedule(args.schedule),
            "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
            "dtype": args.dtype, "hyperparameters": hyper,
            "checkpoint_every": args.checkpoint_every, "on_divergence": args.on_divergence,
            "divergence_factor": args.divergence_factor, "reduce_factor": args.reduce_factor,
            "model": args.model, "loss": args.loss}


def _set_up(args):
    """The run of ``gdlab fit``: a new one in --out, or the one in --resume continued."""
    from ..train import runfolder

    options = {"progress": not args.quiet, "shard_optimizer_state": args.shard_optimizer_state,
               "on_message": warner("fit")}
    if args.resume is None:
        if args.out is None:
            raise CommandError("--out RUN_DIR is required (or --resume RUN_DIR to continue a "
                               "run)")
        settings = _settings(args)
        return runfolder.start_run(check_out_dir(args.out, args.force), settings, **options)
    given = _given(args)
    others = sorted(given - RESUME_OPTIONS)
    if others:
        names = ", ".join("--" + name.replace("_", "-") for name in others)
        raise CommandError(f"--resume continues a run with the settings in its config.json; "
                           f"besides it takes only --epochs, --lr (a manual change of α), "
                           f"--checkpoint-every, --on-divergence, --divergence-factor, "
                           f"--reduce-factor and --quiet; got {names}")
    changes = {name: getattr(args, name) for name in RESUME_CHANGES if name in given}
    return runfolder.resume_run(args.resume, **changes, **options)


def _fit_worker(argv) -> None:
    """One worker of ``gdlab fit --nproc N`` (its process group is set up by launch)."""
    import os

    from ..train.distributed import is_main_process
    from . import main

    if not is_main_process():
        sys.stdout = open(os.devnull, "w")  # rank 0 prints; every rank reports errors
    status = main(argv)
    if status:
        raise SystemExit(status)


def cmd_fit(args) -> None:
    from ..train import distributed

    if args.nproc is not None:
        from .._checks import check_positive_int

        check_positive_int("nproc", args.nproc)
    if args.nproc and args.nproc > 1 and not distributed.init_from_env():
        try:
            distributed.launch(_fit_worker, args.nproc, args.argv)
        except distributed.LaunchFailed as e:
            raise RunFailed(f"data-parallel run failed: {e}") from None
        return
    distributed.init_from_env()  # under torchrun: this process is one rank
    _fit(args)


def _fit(args) -> None:
    if args.model is not None and args.layers is not None:
        raise CommandError("--layers sizes gdlab's own MLP; with --model the model is yours")
    run = _set_up(args)
    try:
        _train_and_write(args, run)
    except OSError as error:  # no space, file too large, read-only: say what is safe
        raise WriteError.of(error).with_note(run.resume_note()) from None
    finally:
        run.close()


def _train_and_write(args, run) -> None:
    from ..data.datasets import describe

    out, fit = run.out, run.fit
    print(describe(run.dataset) if run.dataset is not None else
          f"{run.config['model']} on {run.config['data']}: m = {fit.m} training examples")
    if args.resume is not None:
        if not run.resumed:
            print(f"no checkpoint in {out} yet: starting it from epoch 0")
        elif fit.epoch_num >= fit.epochs:
            print(f"{out} has trained all {fit.epochs} epochs: writing its results")
        else:
            print(f"resuming {out} at epoch {fit.epoch_num} of {fit.epochs}")
        if run.manual_lr is not None:
            print(f"α = {run.manual_lr:g} from the next mini-batch on (set by hand, recorded in "
                  f"events.json)")
    try:
        failure = run.train()
    except KeyboardInterrupt as e:
        detail = f" ({e})" if str(e) else ""
        raise KeyboardInterrupt(f"interrupted{detail}; checkpoint at epoch {fit.epoch_num} "
                                f"saved; continue with: gdlab fit --resume {out}") from None
    if failure is not None:
        kept = f"epochs 1-{fit.epoch_num}" if fit.epoch_num else "the initial model"
        message = str(failure).replace("on_divergence='reduce'", "--on-divergence reduce")
        failure = f"{message} (the run folder holds {kept})"
    if not run.main_rank:
        if failure is not None:
            raise RunFailed(failure)
        return
    try:
        result = _write_results(run)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"interrupted while writing the results; the checkpoint holds "
                                f"epochs 1-{fit.epoch_num}: gdlab fit --resume {out} writes "
                                f"them") from None
    if failure is not None:
        raise RunFailed(failure)
    acc = "" if result.train_accuracy is None else \
        f", train accuracy {result.train_accuracy:.4f}"
    which = "test" if run.dataset is not None else "validation"
    test = "" if result.test_accuracy is None else \
        f", {which} accuracy {result.test_accuracy:.4f}"
    print(f"{run.label}: final cost {result.final_cost:.6f}{acc}{test} in {result.seconds:.1f} s")
    print(f"run folder: {out}")


def _write_results(run):
    """The report (when an epoch finished) and the run's results; returns the RunResult."""
    from ..lab.compare import data_summary
    from ..lab.runs import RunResult
    from ..models import accuracy
    from ..report import write_report

    model, history, dataset, config = run.fit.model, run.fit.history, run.dataset, run.config
    if dataset is not None:
        train_acc = accuracy(model, dataset.X_train, dataset.Y_train, dataset.task)
        test_acc = accuracy(model, dataset.X_test, dataset.Y_test, dataset.task)
    else:
        train_acc, test_acc = None, (history.metrics.get("val_accuracy") or [None])[-1]
    result = RunResult(
        optimizer=config["optimizer"], schedule=config["schedule"], label=run.label,
        history=history, model=model, seconds=history.times[-1] if history.times else 0.0,
        train_accuracy=train_acc, test_accuracy=test_acc,
        config={**{key: config[key] for key in ("optimizer", "lr", "schedule", "epochs",
                                                "batch_size", "seed")}, "m": run.fit.m})
    keys = ("data", "target", "layers", "optimizer", "lr", "schedule", "epochs", "batch_size",
            "seed", "dtype") if dataset is not None else ("model", "data", "loss", "optimizer",
                                                          "lr", "schedule", "epochs",
                                                          "batch_size", "seed", "dtype")
    report_config = {k: config[k] for k in keys}
    if history.epoch_costs:
        name = dataset.name if dataset is not None else config["data"]
        write_report(run.out, [result], dataset if dataset is not None else
                     data_summary([result]), title=f"gdlab fit — {run.label} on {name}",
                     config=report_config)
    run.write_results()
    return result


def cmd_lr(args) -> None:
    from .._checks import check_positive
    from ..train.callbacks.control import read_status, request_lr
    from ..train.runfolder import read_config

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
    from ..train.callbacks.control import format_status, read_status
    from ..train.runfolder import read_config

    read_config(args.run_dir)
    status = read_status(args.run_dir)
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(f"run folder:     {args.run_dir}")
        print(format_status(status, args.run_dir))


def register(commands) -> None:
    """Add ``fit``, ``lr`` and ``status`` to ``commands``."""
    p = commands.add_parser("fit", help="train one model and write its run folder",
                            description="Train one model and write config.json, history.csv, "
                            "model.safetensors, figures and report.html to --out.")
    data_options(p, 500)
    p.add_argument("--model", metavar="SPEC", help="your model: path/to/file.py:function "
                   "returning an nn.Module (then --data may be a SPEC returning (X, Y), "
                   "((X, Y), (X_val, Y_val)), a Dataset or a DataLoader); recorded in "
                   "config.json, so --resume rebuilds it")
    p.add_argument("--loss", help="with --model: cross_entropy, bce, mse or a SPEC (default: "
                   "inferred from the outputs and targets)")
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
    p.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="save a checkpoint every N epochs (default: every 10 epochs, at most "
                   "one a second), and at the end and on Ctrl-C")
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
