"""``gdlab compare`` (every optimizer, with and without decay, from the same start) and
``gdlab lr-find`` (the α to start from): gdlab's MLP on its data, or your model and data."""

from __future__ import annotations

from .._checks import check_positive, check_positive_int
from .._files import write_config
from .common import (
    OPTIMIZERS,
    CommandError,
    _layers,
    _names,
    _schedule,
    check_out_dir,
    data_options,
    take_out_dir,
    warner,
)


def cmd_compare(args) -> None:
    from ..lab.compare import default_decay
    from ..schedules import parse_schedule

    optimizers = _names(args.optimizers, OPTIMIZERS, "optimizers")
    if args.epochs is None:
        args.epochs = MODEL_EPOCHS if args.model is not None else BUILTIN_EPOCHS
    check_positive_int("epochs", args.epochs)
    decay = default_decay(args.epochs) if args.schedule is None else _schedule(args.schedule)
    if decay is not None:
        parse_schedule(decay, 1.0)  # a malformed schedule fails before anything runs
    lr = _lr(args.lr)
    check_positive_int("seeds", args.seeds)
    check_positive_int("batch_size", args.batch_size)
    check_out_dir(args.out, args.force)  # (checked now; created once everything else is)
    if args.model is None:
        if args.loss is not None:
            raise CommandError("--loss applies to --model (gdlab's MLP takes its output's cost)")
        _compare_builtin(args, optimizers, decay, lr)
    else:
        _compare_model(args, optimizers, decay, lr)


def _lr(text):
    """--lr: a number, "auto" (the LR finder's suggestion per optimizer) or None."""
    if text is None or text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise CommandError(f"--lr must be a number > 0 or auto, got {text!r}") from None
    return check_positive("lr", value)


def _compare_builtin(args, optimizers, decay, lr) -> None:
    from ..data.datasets import describe, load_data
    from ..lab.compare import compare
    from ..models import check_layers
    from ..train.runfolder import clamp_batch_size

    layers = _layers(args.layers)
    dataset = load_data(args.data, target=args.target, seed=args.seed)
    clamp_batch_size(args.batch_size, len(dataset.X_train), warner("compare"))  # compare clamps
    if layers is not None:
        check_layers(layers, dataset)
    with take_out_dir(args.out, args.force, "gdlab compare") as out:
        print(describe(dataset))
        comparison = compare(data=dataset, layers=layers, optimizers=optimizers, lr=lr,
                             epochs=args.epochs, batch_size=args.batch_size, decay=decay,
                             seed=args.seed, seeds=args.seeds, dtype=args.dtype,
                             progress=not args.quiet)
        runs = comparison.runs
        config = {"data": args.data, "layers": runs[0].model.layer_dims, "epochs": args.epochs,
                  "batch_size": args.batch_size, "seed": args.seed, "seeds": args.seeds,
                  "dtype": args.dtype, "lr": _lr_text(args.lr, comparison),
                  "decay": decay or "none"}
        write_config(out, "compare", config)
        report = comparison.write_report(out, dataset, title=f"gdlab compare — {dataset.name}",
                                         config=config)
    print(table(runs) if args.seeds == 1 else comparison.table())
    print(f"report: {report}")


def _compare_model(args, optimizers, decay, lr) -> None:
    from .._spec import load_spec
    from ..data.datasets import user_data
    from ..lab.compare import compare
    from ..losses import named_loss

    if args.layers is not None:
        raise CommandError("--layers sizes gdlab's own MLP; with --model the model is yours")
    factory = load_spec(args.model, "--model")
    data = user_data(args.data, target=args.target, seed=args.seed)
    loss = named_loss(args.loss)
    with take_out_dir(args.out, args.force, "gdlab compare") as out:
        comparison = compare(factory, data, optimizers=optimizers, lr=lr, epochs=args.epochs,
                             batch_size=args.batch_size, decay=decay, seed=args.seed,
                             seeds=args.seeds, loss=loss, progress=not args.quiet)
        config = {"model": args.model, "data": args.data,
                  "loss": comparison.runs[0].history.loss, "epochs": args.epochs,
                  "batch_size": args.batch_size, "seed": args.seed, "seeds": args.seeds,
                  "lr": _lr_text(args.lr, comparison), "decay": decay or "none"}
        write_config(out, "compare", config)
        report = comparison.write_report(out, title=f"gdlab compare — {args.model}",
                                         config=config)
    print(comparison.table())
    print(f"report: {report}")


#: the default --epochs: gdlab's small MLP trains in a second; a model of the user's is larger
BUILTIN_EPOCHS, MODEL_EPOCHS = 100, 10
def _lr_text(text, comparison):
    if text == "auto":
        return "auto: " + ", ".join(f"{k} {v:.3g}" for k, v in comparison.lrs.items())
    return text if text is not None else "per optimizer"


def cmd_lr_find(args) -> None:
    from .._spec import load_spec
    from ..data.datasets import user_data
    from ..lab.lr_find import lr_find
    from ..losses import named_loss
    from ..models import built_model

    check_out_dir(args.out, args.force)
    _names(args.optimizer, OPTIMIZERS, "optimizer")
    if args.model is not None:
        model = built_model(load_spec(args.model, "--model"), args.seed)
        data = user_data(args.data, target=args.target, seed=args.seed)
    else:
        import torch

        from ..data.datasets import load_data
        from ..models import default_layers, initial_model

        dataset = load_data(args.data, target=args.target, seed=args.seed)
        model = initial_model(dataset, default_layers(dataset), args.seed)
        data = (torch.as_tensor(dataset.X_train, dtype=torch.float32),
                torch.as_tensor(dataset.Y_train))
    loss = named_loss(args.loss)
    with take_out_dir(args.out, args.force, "gdlab lr-find") as out:
        result = lr_find(model, data, args.optimizer, loss=loss, steps=args.steps,
                         seeds=args.seeds, batch_size=args.batch_size, seed=args.seed)
        write_config(out, "lr-find", {"model": args.model, "data": args.data,
                                      "optimizer": args.optimizer, "steps": args.steps,
                                      "seeds": args.seeds, "batch_size": args.batch_size,
                                      "seed": args.seed, "suggestion": result.suggestion})
        figure = result.save(out)
    print(result.summary())
    print(f"figure: {figure}")


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
    data_options(p, None)
    p.add_argument("--model", metavar="SPEC", help="your model: path/to/file.py:function or "
                   "package.module:function returning an nn.Module (then --data may be a SPEC "
                   "returning (X, Y), ((X, Y), (X_val, Y_val)), a Dataset or a DataLoader)")
    p.add_argument("--loss", help="with --model: cross_entropy, bce, mse or a SPEC of "
                   "loss(output, Y) (default: inferred from the outputs and targets)")
    p.add_argument("--seeds", type=int, default=1, metavar="K", help="train each run with K "
                   "seeds (--seed, --seed+1, ...) and show the median and range (default: 1)")
    p.add_argument("--optimizers", default="gd,momentum,rmsprop,adam",
                   help="comma-separated subset of gd,momentum,rmsprop,adam")
    p.add_argument("--lr", help="one α for every optimizer, or auto (each optimizer's α from "
                   "the LR finder) (default: gd 0.1, momentum 0.1, rmsprop 0.005, adam 0.005)")
    p.add_argument("--schedule", help="the decay each optimizer is also run with, as "
                   "name:key=value,... (inverse_time, exponential, inverse_sqrt, staircase, "
                   "plateau), or none")
    p.add_argument("--out", default="gdlab-report", help="report folder (default: "
                   "gdlab-report)")
    p.set_defaults(run=cmd_compare)

    p = commands.add_parser("lr-find", help="the α to start from: an exponential α ramp, "
                            "repeated over seeds, and where the smoothed cost falls fastest",
                            description="Train copies of the model with α rising "
                            "exponentially from 1e-7 to 10 over --steps mini-batches, for "
                            "--seeds mini-batch orders; print the suggested α (steepest fall "
                            "of the bias-corrected EWA of the cost) with its spread and write "
                            "lr_find.png.")
    p.add_argument("--model", metavar="SPEC", help="your model (path/to/file.py:function); "
                   "default: gdlab's MLP for --data")
    p.add_argument("--data", default="moons", help="a built-in set, a .csv/.npz file or, with "
                   "--model, a SPEC (default: moons)")
    p.add_argument("--target", help="CSV column holding the labels (default: the last)")
    p.add_argument("--loss", help="with --model: cross_entropy, bce, mse or a SPEC")
    p.add_argument("--optimizer", default="adam", help="gd, momentum, rmsprop or adam "
                   "(default: adam)")
    p.add_argument("--steps", type=int, default=100, help="mini-batches of the ramp "
                   "(default: 100)")
    p.add_argument("--seeds", type=int, default=3, help="mini-batch orders (default: 3)")
    p.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="the first seed (default: 0)")
    p.add_argument("--out", default="gdlab-lr-find", help="folder for lr_find.png and "
                   "config.json (default: gdlab-lr-find)")
    p.add_argument("--force", action="store_true",
                   help="write into --out even if it holds something else")
    p.set_defaults(run=cmd_lr_find)
