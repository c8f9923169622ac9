"""Imports point one way: every module under src/gdlab is parsed (imports at any depth,
relative ones resolved) and each import must go to its own layer or a lower one.

    cli → lab → report → train → {optim, data, models, losses, backprop, schedules}
        → {ewa, _checks, _files}

report sits just below lab, so it is used by lab and cli only. No import cycles between the
top-level modules and subpackages; in the cli, no command module imports another.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
#: the layers, highest first: a module may import its own layer and those below it
LAYERS = (
    {"cli"},
    {"lab", "course"},
    {"report"},
    {"train"},
    {"optim", "data", "models", "losses", "backprop", "schedules"},
    {"ewa", "_checks", "_files", "_spec", "_lazy"},
)
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}
#: what modules inside gdlab may take from the package's face (gdlab/__init__.py)
FROM_ROOT = {"__version__"}


def _modules() -> dict[str, Path]:
    """Dotted module name → file, for every module of the package."""
    modules = {}
    for path in sorted((SRC / "gdlab").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int, str | None]]:
    """(imported gdlab module, line, name taken) for every import in the file, at any depth;
    ``from X import a`` counts as X.a when that is a module, else as X taking a."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.append((sub, node.lineno, None) if sub in MODULES else
                             (source, node.lineno, alias.name))
    return [found_ for found_ in found
            if found_[0] == "gdlab" or found_[0].startswith("gdlab.")]


def _top(module: str) -> str:
    """The top-level module or subpackage of gdlab a module belongs to ("" for the face)."""
    return module.split(".")[1] if module.count(".") else ""


def _edges():
    """(importer, imported, line, file, name taken) for every gdlab import in src/gdlab."""
    for name, path in MODULES.items():
        for target, line, taken in _imports(name, path):
            yield name, target, line, path, taken


def test_every_module_is_in_a_layer():
    unplaced = sorted({_top(name) for name in MODULES} - set(LEVEL) - {""})
    assert not unplaced, f"modules in no layer of LAYERS: {unplaced}"


def test_imports_point_down_the_layers():
    wrong = []
    for name, target, line, path, _ in _edges():
        if name == "gdlab":
            continue  # the face names everything (lazily)
        here, there = _top(name), _top(target)
        if there == "":
            continue  # checked by test_the_package_face_gives_only_its_version
        if here in LEVEL and there in LEVEL and LEVEL[there] < LEVEL[here]:
            wrong.append(f"{path.relative_to(SRC)}:{line}: {name} ({here}) imports {target} "
                         f"({there}, a higher layer)")
    assert not wrong, "\n".join(wrong)


def test_the_package_face_gives_only_its_version():
    wrong = [f"{path.relative_to(SRC)}:{line}: {name} takes {taken or 'all of gdlab'} from "
             f"gdlab/__init__.py" for name, target, line, path, taken in _edges()
             if target == "gdlab" and name != "gdlab" and taken not in FROM_ROOT]
    assert not wrong, "\n".join(wrong)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_no_import_cycles_between_top_level_modules():
    graph = {}
    for name, target, _, _, _ in _edges():
        here, there = _top(name), _top(target)
        if here and there and here != there:
            graph.setdefault(here, set()).add(there)
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " → ".join(cycle)


def test_no_command_module_imports_another():
    wrong = []
    for name, target, line, path, _ in _edges():
        if name.startswith("gdlab.cli.") and name != "gdlab.cli.__main__" and \
                target.startswith("gdlab.cli") and target not in ("gdlab.cli",
                                                                  "gdlab.cli.common"):
            wrong.append(f"{path.relative_to(SRC)}:{line}: {name} imports {target}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("graph, cycle", [
    ({"a": {"b"}, "b": {"c"}}, None),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
])
def test_the_cycle_finder_finds_cycles(graph, cycle):
    assert _cycle(graph) == cycle


def test_relative_imports_resolve():
    """The resolver itself: a relative import two levels up from a subpackage's module."""
    imports = {target for target, _, _ in _imports("gdlab.cli.fit", MODULES["gdlab.cli.fit"])}
    assert "gdlab.train.runfolder" in imports and "gdlab.cli.common" in imports
    assert "gdlab._checks" in imports and "gdlab.cli" in imports
