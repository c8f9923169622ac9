"""The ``gdlab`` command: ``compare`` (the main job), ``fit`` and ``course``.

Bad input is answered with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from . import __version__
from .lab.compare import DEFAULT_DECAY
from .optim import OPTIMIZERS


class CommandError(ValueError):
    """A problem with what the user asked for: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with errors on one line: ``gdlab fit: error: ... (see gdlab fit --help)``."""

    def error(self, message):
        raise CommandError(f"{message} (see {self.prog} --help)")


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
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_config(out: Path, command: str, config: dict) -> None:
    config = {"gdlab": __version__, "command": command, **config}
    (out / MARKER).write_text(json.dumps(config, indent=2) + "\n")


def _load(args):
    from .datasets import load_data

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
    from .datasets import describe
    from .lab.compare import compare
    from .report import write_report

    optimizers = _names(args.optimizers, OPTIMIZERS, "optimizers")
    layers = _layers(args.layers)
    out = prepare_out_dir(args.out, args.force)
    dataset = _load(args)
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


def cmd_fit(args) -> None:
    from safetensors.torch import save_file

    from .datasets import describe
    from .lab.compare import DTYPES, check_layers, default_layers, initial_model, train_run
    from .lab.runs import accuracy
    from .report import write_report

    if args.optimizer not in OPTIMIZERS:
        raise CommandError(f"unknown optimizer {args.optimizer!r}; allowed: "
                           f"{', '.join(OPTIMIZERS)}")
    out = prepare_out_dir(args.out, args.force)
    dataset = _load(args)
    layers = check_layers(_layers(args.layers), dataset) if args.layers else \
        default_layers(dataset)
    print(describe(dataset))
    initial = initial_model(dataset, layers, args.seed, DTYPES[args.dtype])
    accuracies = []

    def record_accuracy(run):
        accuracies.append(accuracy(run.model, dataset.X_train, dataset.Y_train, dataset.task))

    run = train_run(dataset, initial, args.optimizer, args.lr, _schedule(args.schedule),
                    epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                    progress=not args.quiet, callbacks=(record_accuracy,))
    config = {"data": args.data, "target": args.target, "layers": layers,
              "optimizer": args.optimizer, "lr": args.lr, "schedule": run.schedule,
              "epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
              "dtype": args.dtype}
    write_config(out, "fit", config)
    write_report(out, [run], dataset, title=f"gdlab fit — {run.label} on {dataset.name}",
                 config=config)
    history = run.history
    with open(out / "history.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "cost", "lr", "accuracy", "time"])
        for i, cost in enumerate(history.epoch_costs):
            acc = accuracies[i]
            writer.writerow([i + 1, repr(cost), repr(history.lrs[i]),
                             "" if acc is None else repr(acc), f"{history.times[i]:.6f}"])
    weights = {name: tensor.detach().clone().contiguous()
               for name, tensor in run.model.state_dict().items()}
    save_file(weights, str(out / "model.safetensors"),
              metadata={"layers": ",".join(map(str, layers)), "output": dataset.output})
    acc = "" if run.train_accuracy is None else f", train accuracy {run.train_accuracy:.4f}"
    test = "" if run.test_accuracy is None else f", test accuracy {run.test_accuracy:.4f}"
    print(f"{run.label}: final cost {run.final_cost:.6f}{acc}{test} in {run.seconds:.1f} s")
    print(f"run folder: {out}")


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
    p.add_argument("--out", required=True, help="run folder to write")
    p.set_defaults(run=cmd_fit)

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
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        args.run(args)
    except (CommandError, ValueError, TypeError, FileNotFoundError, PermissionError) as error:
        command = f"gdlab {args.command}" if "args" in locals() and args.command else "gdlab"
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"{command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gdlab: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
