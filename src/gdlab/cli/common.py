"""What the command modules share: the one-line errors, the output folder's checks, the
argument-parsing helpers and the light names the parsers show.

Light on purpose: building the parser imports this module, never torch or the lab.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from .._files import LOCK, FolderLock, lock_folder

#: the optimizers' names, as gdlab.optim.OPTIMIZERS holds them (a test keeps them equal)
OPTIMIZERS = ("gd", "momentum", "rmsprop", "adam")
MARKER = "config.json"


class CommandError(ValueError):
    """A problem with what the user asked for: printed as one line, exit status 2. ``prog``:
    the command it is about (e.g. "gdlab fit"), when argparse found it."""

    def __init__(self, message: str, prog: str | None = None):
        super().__init__(message)
        self.prog = prog


class RunFailed(Exception):
    """A run that could not finish (it diverged): printed as one line, exit status 1."""

    status = 1


#: a value that starts like a negative number: -1, -.5, -1e-3, the range -1:0.1, the list -1,2
_NEGATIVE = re.compile(r"-\.?\d")


def join_negative_values(argv: list[str]) -> list[str]:
    """``--lr -1:0.1`` as ``--lr=-1:0.1``: argparse takes a value that starts with "-" and is not
    a plain number for an option; joined to its option, it reaches the option's own check
    (which says what is allowed). No gdlab option starts with a digit."""
    out = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + argv[i:]
        previous = out[-1] if out else ""
        if _NEGATIVE.match(arg) and previous.startswith("--") and "=" not in previous:
            out[-1] = f"{previous}={arg}"
        else:
            out.append(arg)
    return out


class Parser(argparse.ArgumentParser):
    """argparse with errors on one line: ``gdlab fit: error: ... (see gdlab fit --help)``, and
    option values that start with "-" (``--lr -1:0.1``) taken as values."""

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args(join_negative_values(args), namespace)

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


def warner(command: str):
    """``on_message`` for the library: ``gdlab CMD: warning: ...`` on stderr."""
    return lambda text: print(f"gdlab {command}: warning: {text}", file=sys.stderr)


def take_out_dir(path: str, force: bool, command: str) -> FolderLock:
    """The output folder checked (as ``check_out_dir``), created and held for this process:
    ``with take_out_dir(args.out, args.force, "gdlab sweep") as out: ...`` (another process
    on it gets "OUT is in use by process PID since TIME"). Call it once every argument is
    checked: it is the first thing a command writes."""
    return lock_folder(check_out_dir(path, force), command)


def check_out_dir(path: str, force: bool) -> Path:
    """The output folder ``path`` checked, nothing created: a folder that holds anything but a
    gdlab output (its config.json with a "gdlab" key) is refused unless ``force``."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {path!r} exists and is not a folder")
    if out.is_dir() and any(p.name != LOCK for p in out.iterdir()) and not force:
        try:
            is_gdlab = "gdlab" in json.loads((out / MARKER).read_text())
        except (OSError, ValueError, TypeError):
            is_gdlab = False
        if not is_gdlab:
            raise CommandError(f"--out {path!r} exists and is not a gdlab output folder; "
                               f"choose another folder or add --force")
    return out


def data_options(p, default_epochs: int) -> None:
    """The data, network and training options of ``compare`` and ``fit``."""
    p.add_argument("--data", default="moons", help="built-in set (moons, circles, digits, "
                   "breast-cancer, iris) or a .csv/.npz file (default: moons)")
    p.add_argument("--target", help="CSV column holding the labels (default: the last)")
    p.add_argument("--layers", help="layer sizes n_x,n_h1,...,n_y (default: n_x,16,8,n_y)")
    p.add_argument("--epochs", type=int, default=default_epochs,
                   help="passes over the training data (default: " + (
                       f"{default_epochs})" if default_epochs is not None else
                       "100 for gdlab's MLP, 10 with --model)"))
    p.add_argument("--batch-size", type=int, default=64,
                   help="mini-batch size: m gives batch GD, 1 gives SGD (default: 64)")
    p.add_argument("--seed", type=int, default=0, help="seed for the split, the "
                   "initialization and the mini-batch order (default: 0)")
    dtype_option(p)
    p.add_argument("--force", action="store_true",
                   help="write into --out even if it holds something else")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def dtype_option(p) -> None:
    """``--dtype``, shared by the commands that train."""
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="floating-point type of the data, the weights and the optimizer's "
                   "state: float32 (fast) or float64 (exact to the last digits, for "
                   "comparisons and resumes checked bit for bit) (default: float32)")
