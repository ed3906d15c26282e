"""The house's imports run one way (DESIGN §2): ingest -> workers -> core, policy; no cycles.

Every import is read from the source with `ast`, those inside functions included, so an
import hidden in a function to dodge a cycle is seen like any other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("core", "policy", "workers", "ingest")
# What each package may import of the product (itself included).
ALLOWED = {
    "core": {"core"},
    "policy": {"policy"},
    "workers": {"workers", "core", "policy"},
    "ingest": {"ingest", "workers", "core", "policy"},
    "emulators": {"emulators"},
}
# The demo launcher alone starts the emulators (DESIGN §2).
EMULATOR_LAUNCHERS = {"ingest.demo", "ingest.demo_command", "ingest.emulator_command"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    out = {}
    for package in (*PRODUCT, "emulators"):
        for path in sorted((ROOT / package).rglob("*.py")):
            out[module_name(path)] = path
    return out


MODULES = all_modules()


def imports_of(name: str, path: Path) -> Iterator[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top_level = {id(node) for node in tree.body}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, id(node) in top_level
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                target = candidate if candidate in MODULES else base
                yield target, node.lineno, id(node) in top_level


def owner(module: str) -> str:
    return module.partition(".")[0]


def product_edges() -> list[tuple[str, str, int, bool]]:
    edges = []
    for name, path in MODULES.items():
        for target, line, top in imports_of(name, path):
            if owner(target) in ALLOWED:
                edges.append((name, target, line, top))
    return edges


def wrong_way(edges: list[tuple[str, str, int, bool]]) -> list[str]:
    bad = []
    for source, target, line, _ in edges:
        allowed = ALLOWED[owner(source)]
        if owner(target) == "emulators" and any(
            source == m or source.startswith(m + ".") for m in EMULATOR_LAUNCHERS
        ):
            continue
        if owner(target) not in allowed:
            bad.append(f"{MODULES[source].relative_to(ROOT)}:{line} imports {target}")
    return bad


def cycles(edges: list[tuple[str, str, int, bool]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), emulators aside."""
    graph: dict[str, set[str]] = {}
    for source, target, _, _ in edges:
        if owner(source) == "emulators" or owner(target) == "emulators":
            continue
        if target in MODULES and target != source:
            graph.setdefault(source, set()).add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


class TestImportDirection:
    """Imports run ingest -> workers -> core, policy, and emulators stand apart."""

    def test_no_import_runs_the_wrong_way(self) -> None:
        assert wrong_way(product_edges()) == []

    def test_no_cycle_between_modules_of_the_product(self) -> None:
        assert cycles(product_edges()) == []

    def test_every_package_is_read(self) -> None:
        # The walk must see the packages it judges, or it proves nothing.
        for package in (*PRODUCT, "emulators"):
            assert any(owner(name) == package for name in MODULES)

    @pytest.mark.parametrize(
        ("source", "line"),
        [
            ("workers.pipeline", "from ingest import app"),
            ("core.settings", "from workers import ledger"),
            ("policy.rules", "import core.keys"),
            ("core.keys", "def later():\n    from ingest.cli import main\n"),
            ("ingest.app", "from emulators import scenario"),
        ],
    )
    def test_one_added_wrong_import_is_caught(self, source: str, line: str, tmp_path: Path) -> None:
        path = tmp_path / "probe.py"
        path.write_text(MODULES[source].read_text() + "\n" + line + "\n")
        edges = [
            (source, target, n, top)
            for target, n, top in imports_of(source, path)
            if owner(target) in ALLOWED
        ]
        assert wrong_way(edges), f"{line!r} in {source} was not caught"

    def test_a_cycle_is_caught(self) -> None:
        edges = [("workers.a", "workers.b", 1, True), ("workers.b", "workers.a", 1, False)]
        MODULES.setdefault("workers.a", ROOT / "workers" / "a.py")
        MODULES.setdefault("workers.b", ROOT / "workers" / "b.py")
        try:
            assert cycles(edges) == [["workers.a", "workers.b"]]
        finally:
            MODULES.pop("workers.a")
            MODULES.pop("workers.b")
