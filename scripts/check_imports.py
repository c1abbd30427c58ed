"""Prove the import structure of ``mmrag``: no cycles, and a cheap ``import mmrag``.

Two checks, both run by the tests (``tests/unit/core/test_layout.py``):

1. **No import cycle** among ``mmrag`` modules. Every ``import`` / ``from … import`` in a module
   counts, at module level *and* inside functions (a function-level import that closes a cycle
   is still a cycle, merely a deferred one); imports under ``if TYPE_CHECKING:`` are ignored
   (they never run). ``from pkg import name`` is an edge to ``pkg.name`` when that is a module,
   else to ``pkg``. Importing ``a.b.c`` also runs ``a/b/__init__.py``: that is an edge too,
   unless the importer lives inside ``a.b`` (its own package is already initialised).
2. **Layers**: a module below the pipeline (``mmrag.store``) never imports the pipeline or
   anything above it; the pipeline never imports the integrations (``mmrag.integrations``, the
   CLI).
3. **``import mmrag`` is cheap**: in a fresh interpreter it imports no torch, transformers,
   qdrant_client, qdrant_edge, fastapi or ray.

Usage::

    python scripts/check_imports.py          # exit 0 and a one-line summary, or each problem
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mmrag"
HEAVY = ("torch", "transformers", "qdrant_client", "qdrant_edge", "fastapi", "ray")

#: layer → prefixes it must never import (imports point downwards).
LAYERS: dict[str, tuple[str, ...]] = {
    "mmrag.store": ("mmrag.pipeline", "mmrag.integrations", "mmrag.cli", "mmrag.quickstart"),
    "mmrag.embedders": ("mmrag.pipeline", "mmrag.integrations", "mmrag.cli", "mmrag.store"),
    "mmrag.rerankers": ("mmrag.pipeline", "mmrag.integrations", "mmrag.cli"),
    "mmrag.generators": ("mmrag.pipeline", "mmrag.integrations", "mmrag.cli"),
    "mmrag.pipeline": ("mmrag.integrations", "mmrag.cli", "mmrag.quickstart"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The ``mmrag`` modules that ``name`` imports (at any depth, TYPE_CHECKING aside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def target(base: str, alias: str | None) -> str | None:
        if alias and f"{base}.{alias}" in modules:
            return f"{base}.{alias}"
        return base if base in modules else None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = name.split(".")
                if not is_package:
                    anchor = anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                hit = target(base, alias.name)
                if hit:
                    found.add(hit)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}
    for module in list(found):
        parts = module.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            if parent not in own and parent in modules:
                found.add(parent)
    found -= own
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    result.append(sorted(component))
    return result


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in sorted(graph.items()):
        for layer, forbidden in LAYERS.items():
            if module == layer or module.startswith(layer + "."):
                for target in sorted(targets):
                    if any(target == f or target.startswith(f + ".") for f in forbidden):
                        problems.append(f"{module} imports {target} (a layer above {layer})")
    return problems


def heavy_on_import() -> list[str]:
    code = (
        "import sys, mmrag; mmrag.__dir__();"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    return [m for m in out.split(",") if m]


def main() -> int:
    modules = all_modules()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    problems = [" <-> ".join(c) + "  (import cycle)" for c in cycles(graph)]
    problems += layer_violations(graph)
    heavy = heavy_on_import()
    if heavy:
        problems.append(f"`import mmrag` imports {', '.join(heavy)}")
    for problem in problems:
        print(problem)
    if problems:
        return 1
    edges = sum(len(v) for v in graph.values())
    print(f"ok: {len(modules)} modules, {edges} import edges, no cycle, layers respected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
