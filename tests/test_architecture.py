"""The layering of docs/architecture.md: a module of the core imports only from its own layer or below.

Every `import` of the zoo in zoo/ is read with `ast` (also the ones inside functions, which are how
the core defers torch), reduced to the top-level unit it names (`zoo.eval.harness` -> `eval`), and
checked against the table. A new module must be added to the table: the test fails on one it
does not know, so the picture in the docs stays complete.
"""

from __future__ import annotations

import ast
from pathlib import Path

import zoo

ROOT = Path(zoo.__file__).resolve().parent

# bottom to top; a unit may import units of its own layer or of a lower one
LAYERS: list[set[str]] = [
    {"errors", "util", "native"},  # no torch, nothing of the zoo
    {"protocols", "nn", "distributed", "hookspecs"},  # contracts and building blocks
    {"sampling", "images"},  # the raster driver, image files
    {"autoregressive"},  # the base class of raster models
    {"registry", "plugins"},  # specs and plugin discovery (one layer)
    {"data", "weights"},  # datasets; weight files and config.json
    {"hub"},  # Hugging Face I/O only
    {"factory"},  # names -> models: create, load
    {"checks", "specs", "eval"},  # zoo check; spec checks; the evaluation harness
    {"release"},  # cards, claims, release folders, publish
    {"training"},  # zoo.train
    {"testing", "demo"},  # the plugin test kit and local Hub server; zoo demo
    {"cli", "__main__", "__init__"},  # the command line; `import zoo`'s lazy names
]
RANK = {unit: k for k, layer in enumerate(LAYERS) for unit in layer}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _zoo_imports(path: Path) -> set[str]:
    """The zoo modules `path` imports, absolute (`zoo.eval.harness`)."""
    own = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    package = own if path.name == "__init__.py" else own[:-1]
    package = package[:-1] if package[-1] == "__init__" else package
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                if node.module is None:  # `from .. import x`: x may be a module or a name of the package
                    found |= {".".join(base + [a.name]) for a in node.names}
                    continue
                found.add(".".join(base + [node.module]))
            elif node.module and node.module.split(".")[0] == "zoo":
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "zoo"}
    return found


def _edges() -> dict[str, set[str]]:
    """unit -> the other units it imports (`zoo.__version__` and `zoo`'s own lazy table aside)."""
    edges: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        unit = parts[0] if parts != ("__init__",) else "__init__"
        for module in _zoo_imports(path):
            target = _unit(module)
            if target not in (unit, "__version__", "__init__"):
                edges.setdefault(unit, set()).add(target)
    return edges


def test_every_unit_of_the_core_has_a_layer():
    units = {
        p.stem if p.is_file() else p.name
        for p in ROOT.iterdir()
        if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").is_file())) and p.name != "__init__.py"
    }
    assert units - set(RANK) == set(), "add the new module to LAYERS here and to docs/architecture.md"


def test_no_unit_imports_a_higher_layer():
    wrong = sorted(
        f"{u} (layer {RANK[u]}) imports {v} (layer {RANK[v]})"
        for u, targets in _edges().items()
        for v in targets
        if RANK[v] > RANK[u]
    )
    assert wrong == []


def test_the_checker_sees_function_level_and_relative_imports():
    """The rule is only as good as the import reader: a deferred relative import counts."""
    fake = ROOT / "hub.py"
    found = _zoo_imports(fake)
    assert "zoo.weights" in found and not any(_unit(m) == "eval" for m in found)
    assert "zoo.release" in _zoo_imports(ROOT / "training" / "release.py")  # inside a function


def test_the_architecture_doc_names_every_unit():
    doc = (ROOT.parent / "docs" / "architecture.md").read_text()
    missing = [u for u in RANK if u not in ("__main__", "__init__") and f"`{u}" not in doc]
    assert missing == []
