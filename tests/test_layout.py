"""The package is the pipeline: models -> spaces -> proxy -> study -> analysis -> design -> commands. Each layer
imports only the layers before it (and the shared helpers at the top), so a newcomer can read it bottom-up and no
import cycle can form. Checked on the source with ``ast``, every import counted (function-level ones too)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "regnet_space"
LAYERS = ("models", "spaces", "proxy", "study", "analysis", "design", "commands")
SHARED = {"errors", "userfiles", "redaction", "threads"}  # what every layer may use
ENTRY_POINTS = {"__init__", "__main__", "cli", "demo"}  # above every layer


def _module(path: Path) -> tuple[str, ...]:
    return path.relative_to(PACKAGE).with_suffix("").parts


def _imported(path: Path) -> set[tuple[str, ...]]:
    """Every regnet_space module (as parts below the package) that ``path`` imports."""
    parts = _module(path)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = base + tuple(node.module.split(".")) if node.module else base
            elif node.module and node.module.split(".")[0] == "regnet_space":
                target = tuple(node.module.split(".")[1:])
            else:
                continue
            if node.module is None:  # from . import x: x is a module of that package, or a name in __init__
                found.update(target + (alias.name,) for alias in node.names)
            else:
                found.add(target)
        elif isinstance(node, ast.Import):
            found.update(tuple(a.name.split(".")[1:]) for a in node.names if a.name.split(".")[0] == "regnet_space")
    return {t for t in found if t}


def _rank(parts: tuple[str, ...]) -> int:
    head = parts[0]
    if head in SHARED:
        return -1
    if head in LAYERS:
        return LAYERS.index(head)
    return len(LAYERS)  # entry points and the package itself


def test_imports_flow_down_the_pipeline():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = _module(path)
        for target in _imported(path):
            if _rank(target) > _rank(own) or (_rank(own) == -1 and target[0] not in SHARED):
                upward.append(f"{'/'.join(own)} imports {'.'.join(target)}")
    assert not upward, "imports that flow up the pipeline:\n" + "\n".join(upward)


def test_the_top_of_the_package_holds_only_entry_points_and_shared_helpers():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == ENTRY_POINTS | SHARED
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == set(LAYERS)


def test_the_public_api_is_where_the_readme_says():
    import regnet_space
    from regnet_space.models import build_model as from_models
    from regnet_space.proxy import ProxyConfig, load_dataset, train_model

    assert regnet_space.build_model is from_models
    assert callable(load_dataset) and callable(train_model) and ProxyConfig().epochs > 0
    for layer in LAYERS:
        doc = __import__(f"regnet_space.{layer}", fromlist=["_"]).__doc__
        assert doc and doc.startswith(f"Layer {LAYERS.index(layer) + 1}, {layer}:"), layer
