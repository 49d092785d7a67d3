"""The layout shows the architecture: folders import only downwards, the speed layer stays apart.

Data flows one way (README "How it works"); a folder that imported one above it would make
a cycle sooner or later, and a module outside `bot.server` importing the fast path would make
it impossible to remove.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import bot

ROOT = Path(__file__).resolve().parents[1]
BOT = ROOT / "bot"

# Each folder may import only folders after it (and the top-level modules it names).
ORDER = [
    "bot.cli",
    "bot.demo",
    "bot.testing",
    "bot.server",
    "bot.webhook",
    "bot.webauth",
    "bot.routing",
    "bot.followers",
    "bot.client",
    "bot.storage",
    "bot.wechat",
]
SHARED = {"bot.config", "bot.logs", "bot.metrics"}  # settings, the log line, the metrics
SPEED_LAYER = {"bot.server.fastpath", "bot.server.batch", "bot.server.framing", "bot.server.policy"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "bot" or name.startswith("bot.")}


def _folder(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in BOT.rglob("*.py")}


def test_folders_import_only_the_folders_below_them() -> None:
    wrong = []
    for module, imported in _graph().items():
        here = _folder(module)
        if here not in ORDER:
            continue
        for name in imported:
            there = _folder(name)
            if there == here or name in SHARED or there in SHARED:
                continue
            if there not in ORDER or ORDER.index(there) <= ORDER.index(here):
                wrong.append(f"{module} imports {name}")
    assert wrong == []


def test_no_import_cycle_between_modules() -> None:
    graph = _graph()
    modules = set(graph)
    edges = {m: {n for n in deps if n in modules and n != m} for m, deps in graph.items()}
    # packages' __init__ re-exports point down into their own modules: not a cycle of design
    for m in list(edges):
        edges[m] = {n for n in edges[m] if not m.startswith(n + ".")}
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert cycles == []


def test_only_bot_server_imports_the_speed_layer() -> None:
    importers = {
        module
        for module, imported in _graph().items()
        if imported & SPEED_LAYER and not module.startswith("bot.server")
    }
    assert importers == set()


def test_importing_everything_but_bot_server_leaves_the_fast_path_out() -> None:
    others = sorted(m for m in _graph() if not m.startswith("bot.server") and m != "bot.__main__")
    script = (
        "import importlib, sys\n"
        f"for name in {others!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('bot.server')))\n"
        "import bot.server\n"
        "print('bot.server.fastpath' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "True"


def test_no_performance_knob_in_handlers_or_the_framework() -> None:
    for folder in (BOT, ROOT / "handlers"):
        for path in folder.rglob("*.py"):
            assert "task_free" not in path.read_text(encoding="utf-8"), path


def test_what_handlers_import_is_public() -> None:
    for name in ("StorageUnavailable", "LANGUAGES", "normalize_language", "Router", "Context"):
        assert name in bot.__all__
    for path in (ROOT / "handlers").glob("*.py"):
        deep = {n for n in _imports(path) if n != "bot"}
        assert deep == set(), f"{path.name} imports {deep}: export what handlers need from bot"
