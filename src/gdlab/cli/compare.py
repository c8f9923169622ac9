"""``gdlab compare``: every optimizer, with and without decay, from the same start."""

from __future__ import annotations

from .._files import write_config
from .common import OPTIMIZERS, _layers, _names, _schedule, data_options, prepare_out_dir, warner


def cmd_compare(args) -> None:
    from ..data.datasets import describe, load_data
    from ..lab.compare import DEFAULT_DECAY, compare
    from ..report import write_report
    from ..train.runfolder import clamp_batch_size

    optimizers = _names(args.optimizers, OPTIMIZERS, "optimizers")
    layers = _layers(args.layers)
    decay = DEFAULT_DECAY if args.schedule is None else _schedule(args.schedule)
    out = prepare_out_dir(args.out, args.force)
    dataset = load_data(args.data, target=args.target, seed=args.seed)
    clamp_batch_size(args.batch_size, len(dataset.X_train), warner("compare"))  # compare clamps
    print(describe(dataset))
    runs = compare(data=dataset, layers=layers, optimizers=optimizers, lr=args.lr,
                   epochs=args.epochs, batch_size=args.batch_size, decay=decay, seed=args.seed,
                   dtype=args.dtype, progress=not args.quiet).runs
    config = {"data": args.data, "layers": runs[0].model.layer_dims, "epochs": args.epochs,
              "batch_size": args.batch_size, "seed": args.seed, "dtype": args.dtype,
              "lr": args.lr if args.lr is not None else "per optimizer",
              "decay": decay or "none"}
    write_config(out, "compare", config)
    report = write_report(out, runs, dataset, title=f"gdlab compare — {dataset.name}",
                          config=config)
    print(table(runs))
    print(f"report: {report}")


def table(runs) -> str:
    """The results of runs (gdlab.lab.runs.RunResult) as an aligned text table."""
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


def register(commands) -> None:
    """Add ``compare`` to ``commands`` (what ``ArgumentParser.add_subparsers`` returned)."""
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
    p.add_argument("--schedule", help="the decay each optimizer is also run with, as "
                   "name:key=value,... (inverse_time, exponential, inverse_sqrt, staircase, "
                   "plateau), or none")
    p.add_argument("--out", default="gdlab-report", help="report folder (default: "
                   "gdlab-report)")
    p.set_defaults(run=cmd_compare)
