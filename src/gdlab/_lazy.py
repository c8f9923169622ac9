"""Packages whose public names load on first use (scientific Python's SPEC 1), so that
``import gdlab`` and the ``gdlab`` command start without importing torch."""

from __future__ import annotations

import importlib
import sys


def lazy_names(package: str, names: dict):
    """``(__getattr__, __dir__)`` for ``package``, whose ``names`` map each public name to
    (module, attribute) — the module absolute or relative to ``package``, the attribute None
    for the module itself; a name is imported at its first look-up and kept."""

    def __getattr__(name):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = names[name]
        value = importlib.import_module(module, package)
        if attribute is not None:
            value = getattr(value, attribute)
        setattr(sys.modules[package], name, value)  # the next look-up is a plain one
        return value

    def __dir__():
        return sorted([*vars(sys.modules[package]), *names])

    return __getattr__, __dir__
