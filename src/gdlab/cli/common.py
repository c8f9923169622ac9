"""What the command modules share: the one-line errors, the output folder's checks, the
argument-parsing helpers and the light names the parsers show.

Light on purpose: building the parser imports this module, never torch or the lab.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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


def warner(command: str):
    """``on_message`` for the library: ``gdlab CMD: warning: ...`` on stderr."""
    return lambda text: print(f"gdlab {command}: warning: {text}", file=sys.stderr)


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


def data_options(p, default_epochs: int) -> None:
    """The data, network and training options of ``compare`` and ``fit``."""
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
