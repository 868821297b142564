"""Imports go one way: a module of tsam_cli imports only from its own package or from a lower
layer (docs/design.md, "Layers"). Read from the source (every import, at any depth in a
function), not from what happens to be loaded."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tsam_cli"

#: lowest first; units on one line may not import each other (docs/design.md, "Layers")
LAYERS = [
    ["errors"],
    ["options", "ui", "hooks", "device", "stdio"],
    ["media"],
    ["flow", "model"],
    ["weights"],
    ["data", "metrics", "models"],
    ["core", "masking"],
    ["eval", "train"],
    ["api"],
    ["batch"],
    ["cli"],
    ["entry"],
    ["cli.__main__"],  # `python -m tsam_cli.cli`: the entry point's signal handlers first
]
RANK = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def _unit(path: Path) -> str | None:
    rel = path.relative_to(PACKAGE)
    if rel.parts == ("cli", "__main__.py"):
        return "cli.__main__"
    if rel.parts == ("__init__.py",):
        return None  # the package's lazy API names, resolved on use
    return rel.parts[0].removesuffix(".py")


def _imported_units(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tsam_cli":
            parts = node.module.split(".")
            yield from ([parts[1]] if len(parts) > 1 else [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            yield from (a.name.split(".")[1] for a in node.names if a.name.startswith("tsam_cli."))


def upward_imports() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = _unit(path)
        if unit is None or unit == "shipped":
            continue
        assert unit in RANK, f"{path}: add {unit!r} to LAYERS here and in docs/design.md"
        for other in _imported_units(ast.parse(path.read_text())):
            if other != unit and other in RANK and RANK[other] >= RANK[unit]:
                bad.append(f"{path.relative_to(PACKAGE.parent)}: {unit} imports {other}")
    return bad


def test_no_import_goes_up_or_sideways():
    assert upward_imports() == []


def test_the_rule_catches_an_upward_import(tmp_path):
    tree = ast.parse("def f():\n    from tsam_cli.masking.track import seed_mask\n")
    assert list(_imported_units(tree)) == ["masking"] and RANK["masking"] >= RANK["core"]


def test_the_layers_are_the_documented_ones():
    design = (PACKAGE.parent / "docs" / "design.md").read_text()
    for units in LAYERS:
        assert " ".join(f"`{u}`" for u in units) in design, units


def test_no_function_is_longer_than_50_lines():
    """Functions say one thing each (docs/design.md): none of tsam_cli's runs past 50 lines."""
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 50:
                long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}")
    assert long == []
