"""No import circles among our modules (mirnet/, web/, worker/).

A circle makes a module's meaning depend on which side was imported first, and the usual ways to close one (an
import at the bottom of a file, an import inside a function) hide it. So this reads every import statement,
wherever it stands (top of file, function body, ``TYPE_CHECKING`` block), and requires the graph to be acyclic.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mirnet", "web", "worker")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def our_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def imported_by(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ours that ``path`` imports: ``from a import b`` names ``a.b`` when that is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {target for target in found if target in modules and target != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph`` as a path that ends where it starts, or None (iterative depth-first search)."""
    finished: set[str] = set()
    for start in sorted(graph):
        if start in finished:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        while stack:
            step = next(stack[-1], None)
            if step is None:
                finished.add(path.pop())
                stack.pop()
            elif step in path:
                return [*path[path.index(step) :], step]
            elif step not in finished:
                path.append(step)
                stack.append(iter(sorted(graph[step])))
    return None


def test_the_cycle_finder_finds_a_circle_and_accepts_a_tree() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_relative_and_from_imports_are_resolved(tmp_path: Path) -> None:
    modules = {"pkg": tmp_path / "pkg/__init__.py", "pkg.a": tmp_path / "pkg/a.py", "pkg.b": tmp_path / "pkg/b.py"}
    source = "from . import b\nfrom pkg import a\nimport os\n\ndef later():\n    from .b import thing\n"
    modules["pkg.a"].parent.mkdir()
    modules["pkg.a"].write_text(source)
    assert imported_by("pkg.a", modules["pkg.a"], modules) == {"pkg", "pkg.b"}


def test_our_modules_import_each_other_without_a_circle() -> None:
    modules = our_modules()
    assert {"web.app", "web.core.models", "worker.tasks", "mirnet.inference"} <= modules.keys()
    graph = {name: imported_by(name, path, modules) for name, path in modules.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


# Who may import whom (docs/ARCHITECTURE.md): the parts of ours each part may import, the most specific part first.
MAY_IMPORT = {
    "mirnet": ("mirnet",),  # the model package imports nothing of ours
    "web.core": ("web.core", "mirnet"),  # the shared core: no HTTP layer (and, tested apart, no Flask)
    # The HTTP API's client (`lowlight submit`): it speaks HTTP only, with nothing of the server in it.
    "web.client": ("web.client",),
    "web.submit": ("web.submit", "web.client"),
    "web": ("web", "mirnet"),  # the HTTP layer sends tasks by name, never imports the worker
    # The worker uses the core, not the HTTP layer; its `lowlight` command line also offers the client's `submit`.
    "worker": ("worker", "web.core", "web.submit", "mirnet"),
}


def _inside(module: str, part: str) -> bool:
    return module == part or module.startswith(part + ".")


def _part(module: str) -> str:
    return next(part for part in MAY_IMPORT if _inside(module, part))


def test_each_part_imports_only_what_it_may() -> None:
    modules = our_modules()
    crossings = [
        f"{name} imports {target}"
        for name, path in modules.items()
        for target in sorted(imported_by(name, path, modules))
        if not any(_inside(target, allowed) for allowed in MAY_IMPORT[_part(name)])
    ]
    assert crossings == []
