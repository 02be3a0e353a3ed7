"""The import arrows between apps point one way: leads at the bottom, prompts and training above it, agent
on top. A new import the wrong way (leads → prompts, prompts → agent, ...) fails here."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("leads", "prompts", "training", "agent")
# What each app may import from the others.
ALLOWED = {
    "leads": set(),
    "prompts": {"leads"},
    "training": {"leads", "prompts"},
    "agent": {"leads", "prompts", "training"},
}
# Arrows that still point the wrong way and are being moved; this list only shrinks.
PENDING_MOVES: set[str] = set()  # the dashboard home moved to agent/dashboard/


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every absolute module imported (`from a import b` counts as a and a.b), with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return found


def _imported_apps(path: Path) -> set[tuple[str, int]]:
    found = set()
    for name, line in _imports(path):
        top = name.split(".")[0]
        if top in APPS:
            found.add((top, line))
    return found


def _modules(app: str) -> list[Path]:
    return [p for p in (ROOT / app).rglob("*.py") if "migrations" not in p.parts]


@pytest.mark.parametrize("app", APPS)
def test_an_app_imports_only_the_apps_below_it(app):
    wrong: dict[str, list[str]] = {}
    for path in _modules(app):
        for other, line in sorted(_imported_apps(path)):
            if other != app and other not in ALLOWED[app]:
                wrong.setdefault(str(path.relative_to(ROOT)), []).append(f"line {line} imports {other}")
    pending = {name for name in PENDING_MOVES if name.startswith(f"{app}/")}
    assert {name: found for name, found in wrong.items() if name not in pending} == {}
    # A pending move that is done must leave the list, so the list only shrinks.
    assert pending <= set(wrong), f"remove {sorted(pending - set(wrong))} from PENDING_MOVES"


def test_only_the_turn_schedules_prompt_crediting():
    """The crediting of a reply is a visible step of the turn, not a side effect hidden in leads."""
    schedulers = sorted(
        str(path.relative_to(ROOT))
        for app in APPS
        for path in _modules(app)
        if any(name == "prompts.tasks" for name, _ in _imports(path))
    )
    assert schedulers == ["agent/turn.py"]
