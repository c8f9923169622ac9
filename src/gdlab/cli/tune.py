"""``gdlab tune batch-size`` and ``gdlab sweep`` (registered on the main parser by
:func:`register`), on gdlab's MLP and built-in data or, with ``--model SPEC --data SPEC``, on
a model and data of the user's. Every argument and the data are checked before the output
folder is created; the folder is then held by the command (another process on it is
refused)."""

from __future__ import annotations

from types import SimpleNamespace

from .common import CommandError, _layers, check_out_dir, dtype_option, take_out_dir, warner


def _common(p, epochs: int) -> None:
    p.add_argument("--data", default="moons", help="built-in set or .csv/.npz file, or with "
                   "--model a SPEC returning (X, Y), ((X, Y), (X_val, Y_val)), a Dataset or a "
                   "DataLoader (default: moons)")
    p.add_argument("--model", metavar="SPEC", help="your model: path/to/file.py:function or "
                   "package.module:function returning an nn.Module (default: gdlab's MLP)")
    p.add_argument("--loss", help="with --model: cross_entropy, bce, mse or a SPEC of "
                   "loss(output, Y) (default: inferred from the outputs and targets)")
    p.add_argument("--target", help="CSV column holding the labels (default: the last)")
    p.add_argument("--layers", help="layer sizes n_x,...,n_y (default: n_x,16,8,n_y)")
    p.add_argument("--epochs", type=int, default=epochs, help=f"default: {epochs}")
    p.add_argument("--seed", type=int, default=0, help="split, initialization and mini-batch "
                   "order (default: 0)")
    dtype_option(p)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--force", action="store_true", help="write into --out even if it holds "
                   "something else")


def _setup(args, device):
    """What the command trains (nothing printed or written yet): ``dataset`` (gdlab's, or
    None), ``layers``, the initial ``model`` on ``device``, ``train`` (fit's data arguments),
    ``val`` (None for gdlab's MLP, whose ranking stays on the training cost), ``loss`` and the
    DataLoader's ``batch_size`` (or None)."""
    import torch

    from ..data.datasets import load_data
    from ..models import DTYPES, check_layers, default_layers, initial_model

    check_out_dir(args.out, args.force)  # the cheap checks first
    if args.model is not None:
        return _own_setup(args, device)
    if args.loss is not None:
        raise CommandError("--loss applies to --model (gdlab's MLP takes its output's cost)")
    dataset = load_data(args.data, target=args.target, seed=args.seed)
    layers = _layers(args.layers)
    layers = check_layers(layers, dataset) if layers else default_layers(dataset)
    model = initial_model(dataset, layers, args.seed, DTYPES[args.dtype]).to(device)
    X = torch.as_tensor(dataset.X_train, dtype=DTYPES[args.dtype])
    Y = torch.as_tensor(dataset.Y_train)
    return SimpleNamespace(dataset=dataset, layers=layers, model=model, train=(X, Y), val=None,
                           loss=None, batch_size=None)


def _own_setup(args, device):
    """:func:`_setup` for ``--model SPEC --data SPEC``: the model made under ``--seed``, the
    data's own validation data or a share of it held out
    (:data:`gdlab.lab.tune.DEFAULT_VAL_FRACTION`)."""
    from .._spec import load_spec
    from ..data.batches import held_out
    from ..data.datasets import user_data
    from ..lab.compare import own_setup
    from ..lab.tune import DEFAULT_VAL_FRACTION
    from ..losses import named_loss

    if args.layers is not None:
        raise CommandError("--layers sizes gdlab's own MLP; with --model the model is yours")
    factory = load_spec(args.model, "--model")
    loss = named_loss(args.loss)
    data = user_data(args.data, target=args.target, seed=args.seed)
    setup = own_setup(factory, data, args.seed, loss)
    train, val = held_out(setup.train, setup.val, DEFAULT_VAL_FRACTION, args.seed)
    return SimpleNamespace(dataset=None, layers=None, model=setup.initial.to(device),
                           train=train, val=val, loss=loss, batch_size=setup.batch_size)


def _describe(args, setup) -> str:
    from ..data.datasets import describe

    if setup.dataset is not None:
        return describe(setup.dataset)
    return (f"{args.model} on {args.data}: {len(setup.train[0])} training examples, "
            f"{len(setup.val[0]) if isinstance(setup.val, tuple) else len(setup.val)} "
            f"for validation")


def _device(text: str):
    """--device as a torch.device that exists here (CommandError otherwise)."""
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise CommandError(f"--device must be cpu, cuda or cuda:N, got {text!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CommandError(f"--device {text}: no CUDA device is available here")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise CommandError(f"--device {text}: this machine has {torch.cuda.device_count()} "
                           f"CUDA device(s), numbered from 0")
    return device


def _bytes(text: str | None) -> int | None:
    if text is None:
        return None
    units = {"": 1, "B": 1, "K": 2**10, "KB": 2**10, "KIB": 2**10, "M": 2**20, "MB": 2**20,
             "MIB": 2**20, "G": 2**30, "GB": 2**30, "GIB": 2**30}
    number = text.strip().upper().rstrip()
    unit = "".join(c for c in number if c.isalpha())
    try:
        value = float(number[:len(number) - len(unit)])
    except ValueError:
        value = -1
    if unit not in units or value <= 0:
        raise CommandError(f"--memory/--memory-budget must be a size like 512M, 2G or "
                           f"1048576, got {text!r}")
    return int(value * units[unit])


def cmd_tune_batch_size(args) -> None:
    from ..lab import tune

    sizes = None
    if args.sizes:
        try:
            sizes = [int(s) for s in args.sizes.split(",")]
        except ValueError:
            raise CommandError(f"--sizes must be comma-separated integers like 16,32,64, got "
                               f"{args.sizes!r}") from None
    budget = _bytes(args.memory_budget)
    device = _device(args.device)
    setup = _setup(args, device)
    settings = {"optimizer": args.optimizer, "lr": args.lr, "seconds": args.seconds,
                "target_cost": args.target_cost, "sizes": sizes, "memory_budget": budget}
    tune.check_settings(len(setup.train[0]), **settings)
    with take_out_dir(args.out, args.force, "gdlab tune batch-size") as out:
        print(_describe(args, setup))
        result = tune.tune_batch_size(setup.model, *setup.train, **settings, seed=args.seed,
                                      loss=setup.loss, val=setup.val)
        what = {"layers": setup.layers} if args.model is None else {"model": args.model,
                                                                    "loss": args.loss}
        written = tune.write_results(out, result, {
            "data": args.data, **what, "optimizer": args.optimizer, "lr": args.lr,
            "seconds": args.seconds, "seed": args.seed})
    if result.trained:
        print(tune.table(result))
        print(f"figure: {written['figure']}")
    for r in result.skipped:
        if r.skipped != "not tried":
            print(f"skipped batch {r.batch_size}: {r.skipped}")
    print(f"recommended mini-batch size: {result.recommended} — {result.reason}")
    print(f"results: {out} (results.json, config.json"
          + (", cost_vs_time.png)" if result.trained else ")"))


def _space_items(args) -> tuple[dict, dict]:
    from ..lab.sweep import read_space

    items, settings = ({}, {}) if args.space is None else read_space(args.space)
    for name in ("optimizer", "lr", "beta", "beta1", "beta2", "eps", "batch_size", "schedule",
                 "decay_rate"):
        value = getattr(args, name)
        if value is not None:
            items[name] = value
    return items, settings


def cmd_sweep(args) -> None:
    from .._checks import check_positive_int
    from ..lab import sweep

    items, _ = _space_items(args)
    space = sweep.parse_space(items)
    if args.method not in sweep.METHODS:
        raise CommandError(f"--method must be one of {', '.join(sweep.METHODS)}")
    tpe = args.method == "tpe" or args.study or args.storage
    for name in ("epochs", "points"):
        check_positive_int(name, getattr(args, name))
    if args.trials < (0 if tpe else 1):  # a study's workers may add none: its ranking only
        raise CommandError(f"--trials must be an integer >= {0 if tpe else 1}, got "
                           f"{args.trials}")
    if args.top < 0:
        raise CommandError(f"--top must be an integer >= 0, got {args.top}")
    device = _device(args.device)
    setup = _setup(args, device)
    batch_size = setup.batch_size or 64
    configs = None if tpe else (sweep.grid(space, args.points, batch_size)
                                if args.method == "grid" else
                                sweep.random_configs(space, args.trials, args.seed, batch_size))
    with take_out_dir(args.out, args.force, "gdlab sweep") as out:
        print(_describe(args, setup))
        trials = _sweep_trials(args, setup, space, configs, out, tpe, batch_size)
        if not trials:
            raise CommandError("no trial finished")
        print(sweep.table(trials))
        written = sweep.write_results(out, trials, setup.dataset, data=args.data,
                                      layers=setup.layers, epochs=args.epochs, seed=args.seed,
                                      dtype=args.dtype, method=args.method, target=args.target,
                                      top=args.top, model=args.model, loss=args.loss)
    if written["report"] is not None:
        print(f"report: {written['report']}")
    best = trials[0]
    score = "" if best.val_cost is None else f"val cost {best.val_cost:.6f}, "
    print(f"best: {score}final cost {best.final_cost:.6f}\n{written['command']}")


def _sweep_trials(args, setup, space, configs, out, tpe, batch_size) -> list:
    """The ranked trials of the sweep: Optuna's study, or the configurations vectorized."""
    from ..lab import sweep

    X, Y = (*setup.train, None)[:2]
    if tpe:
        storage_url = args.storage or f"sqlite:///{(out / 'study.db').resolve()}"
        study = sweep.run_optuna(
            setup.model, X, Y, space, trials=args.trials, epochs=args.epochs,
            study=args.study or "gdlab-sweep", storage_url=storage_url, seed=args.seed,
            sampler_seed=None if args.study or args.storage else args.seed,
            prune=not args.no_prune, progress=not args.quiet, loss=setup.loss, val=setup.val,
            batch_size=batch_size)
        trials = sweep.study_trials(study)
        print(f"study {study.study_name!r} in {sweep.hide_password(storage_url)}: "
              f"{len(trials)} finished trials")
        return trials
    print(f"{len(configs)} configurations, trained vectorized by mini-batch size")
    return sweep.rank(sweep.run_vectorized(setup.model, X, Y, configs, epochs=args.epochs,
                                           seed=args.seed, progress=not args.quiet,
                                           loss=setup.loss, val=setup.val,
                                           on_message=warner("sweep")))


def register(commands) -> None:
    """Add ``tune`` (``tune batch-size``) and ``sweep`` to ``commands``."""
    p = commands.add_parser("tune", help="tune the mini-batch size", description="Tuning "
                            "helpers: `gdlab tune batch-size`.")
    sub = p.add_subparsers(dest="tune_command", metavar="WHAT", parser_class=type(p),
                           required=True)
    q = sub.add_parser("batch-size", help="check powers of two against memory, train each "
                       "for the same time, rank them", description="The lecture's guidance: "
                       "m < 2000 → batch gradient descent; otherwise powers of two 16…1024 "
                       "(up to m), each memory-checked on a trial step, trained from the same "
                       "start for the same wall-clock time and ranked by the time to a target "
                       "validation cost (--model: the data's validation split, or a fifth "
                       "held out) or, for gdlab's MLP, by cost reached per second.")
    _common(q, 10**6)
    q.add_argument("--optimizer", default="adam", help="default: adam")
    q.add_argument("--lr", type=float, default=0.01, help="α (default: 0.01)")
    q.add_argument("--seconds", type=float, default=5.0, help="wall-clock budget per size "
                   "(default: 5)")
    q.add_argument("--target-cost", type=float, help="stop a size once its epoch cost is at "
                   "most this")
    q.add_argument("--sizes", help="sizes to try instead of the powers of two, e.g. 16,32,64 "
                   "(also with m < 2000)")
    q.add_argument("--memory", "--memory-budget", dest="memory_budget", help="bytes a "
                   "training step may use, e.g. 512M, 2G (default: what the device has free)")
    q.add_argument("--out", default="gdlab-tune", help="output folder (default: gdlab-tune)")
    q.set_defaults(run=cmd_tune_batch_size, command="tune batch-size")  # (how errors name it)

    p = commands.add_parser("sweep", help="hyperparameter search: grid, random (vectorized) "
                            "or Optuna TPE (several machines can share a study)",
                            description="Search α, β, β₁, β₂, ε, mini-batch size, decay and "
                            "optimizer. A range low:high is sampled on a log scale (β through "
                            "1-β); a list a,b,c gives the values. Prints a ranked table and the "
                            "best configuration as a gdlab fit command; writes results.csv, "
                            "figures and report.html.")
    _common(p, 100)
    p.add_argument("--space", help="search space in a .toml or .yaml file (options given on "
                   "the command line override it)")
    p.add_argument("--optimizer", help="e.g. adam or adam,momentum (default: adam)")
    p.add_argument("--lr", help="range or list (default: 1e-4:1e-1)")
    for name in ("beta", "beta1", "beta2", "eps", "decay-rate"):
        p.add_argument(f"--{name}", help="range low:high or list a,b,c")
    p.add_argument("--batch-size", help="list, or range of powers of two like 16:256 "
                   "(default: 64)")
    p.add_argument("--schedule", help="list of schedule names, e.g. none,inverse_time "
                   "(decay rate from --decay-rate)")
    p.add_argument("--method", default="random", help="grid, random or tpe (default: random)")
    p.add_argument("--trials", type=int, default=20, help="random/tpe trials (per worker for "
                   "tpe; default: 20)")
    p.add_argument("--points", type=int, default=3, help="grid values per range (default: 3)")
    p.add_argument("--study", help="Optuna study name (implies tpe; workers with the same "
                   "--study and --storage share it)")
    p.add_argument("--storage", help="Optuna storage URL, e.g. postgresql://user@host/db "
                   "(default: sqlite file study.db in --out)")
    p.add_argument("--no-prune", action="store_true", help="tpe: never prune trials")
    p.add_argument("--top", type=int, default=5, help="runs shown in the report (default: 5)")
    p.add_argument("--out", default="gdlab-sweep", help="output folder (default: gdlab-sweep)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_sweep)

