"""SPEC: a function named on the command line as ``path/to/file.py:function`` or
``package.module:function`` (``gdlab compare --model SPEC --data SPEC``, ``gdlab fit``,
``gdlab lr-find``), loaded without running anything but that module."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path


def is_spec(text) -> bool:
    """Whether ``text`` names a function (``where:function``) rather than a data set or file."""
    return isinstance(text, str) and ":" in text and not text.endswith(":")


def load_spec(text: str, option: str = "SPEC"):
    """The function ``text`` names; ValueError in one line if the file, module or function
    does not exist or cannot be imported (``option`` names the argument in the message)."""
    where, _, name = str(text).rpartition(":")
    if not where or not name.isidentifier():
        raise ValueError(f"{option} must be path/to/file.py:function or package.module:function, "
                         f"got {text!r}")
    module = _module(where, option, text)
    function = getattr(module, name, None)
    if function is None:
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", None) == module.__name__)
        raise ValueError(f"{option} {text!r}: {where} has no function {name!r} (it has: "
                         f"{', '.join(found) or 'none'})")
    if not callable(function):
        raise ValueError(f"{option} {text!r}: {name} in {where} is a "
                         f"{type(function).__name__}, not a function")
    return function


def _module(where: str, option: str, text: str):
    try:
        if where.endswith(".py") or "/" in where or "\\" in where:
            path = Path(where)
            if not path.is_file():
                raise ValueError(f"{option} {text!r}: no such file {where}")
            name = f"gdlab_spec_{abs(hash(str(path.resolve())))}"
            if name in sys.modules:
                return sys.modules[name]
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
            return module
        return importlib.import_module(where)
    except ValueError:
        raise
    except ModuleNotFoundError as e:
        raise ValueError(f"{option} {text!r}: no module {e.name!r} (give a .py file's path or "
                         f"an importable module)") from None
    except Exception as e:  # noqa: BLE001 - the user's module failed as it was imported
        message = " ".join(str(e).split())[:200]
        raise ValueError(f"{option} {text!r}: importing {where} failed: "
                         f"{type(e).__name__}: {message}") from None


def call_spec(text: str, option: str):
    """What the function ``text`` names returns, called with no arguments."""
    function = load_spec(text, option)
    try:
        return function()
    except Exception as e:  # noqa: BLE001 - the user's function failed
        message = " ".join(str(e).split())[:200]
        raise ValueError(f"{option} {text!r} failed: {type(e).__name__}: {message}") from None
