"""``gdlab course``: the course's Optimization Methods experiment, printed digit for digit."""

from __future__ import annotations

import json

from .common import OPTIMIZERS, _names


def cmd_course(args) -> None:
    from ..lab.course import DECAYS, run_course

    optimizers = _names(args.optimizer, OPTIMIZERS, "optimizer")
    decay_names = [d or "none" for d in DECAYS]
    decays = [None if d == "none" else d for d in _names(args.decay, decay_names, "decay")]
    print_fn = None if args.json else (lambda text: print(text, flush=True))
    result = run_course(optimizers=optimizers, decays=decays, epochs=args.epochs,
                        print_fn=print_fn, progress=not (args.json or args.quiet))
    if args.json:
        print(json.dumps(result, indent=2))


def register(commands) -> None:
    """Add ``course`` to ``commands``."""
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
