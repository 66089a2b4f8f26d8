"""The package layout: each stage imports only the stages below it (issue 11), and no module edits sys.path."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Lowest first. A module may import its own package and those before it, never one after it.
LAYERS = ("atomic", "audio", "body", "motion", "sync", "dataset", "retrieval", "model", "renderer", "exporters",
          "eval")
ENTRY_POINTS = ("args", "pipeline")   # eval's command-line tools (python -m eval.*) call these, as entry points do


def imported_top_levels(path: Path) -> set[str]:
    """Top-level names of every import in a file, including those inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", LAYERS[1:])
def test_no_stage_imports_a_later_one(package):
    allowed = set(LAYERS[:LAYERS.index(package) + 1]) | (set(ENTRY_POINTS) if package == "eval" else set())
    project = set(LAYERS) | set(ENTRY_POINTS) | {"webapp"} | {p.stem for p in ROOT.glob("*.py")}
    for path in sorted((ROOT / package).rglob("*.py")):
        upward = (imported_top_levels(path) & project) - allowed
        assert not upward, f"{path.relative_to(ROOT)} imports {sorted(upward)}, a later stage than {package}/"


def test_pyproject_lists_the_layers():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'packages = [' + ", ".join(f'"{p}"' for p in LAYERS[1:]) + "]" in text


def test_no_sys_path_edits():
    offenders = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
                 if ".venv" not in p.parts and "sys.path.insert" in p.read_text() and p.name != Path(__file__).name]
    assert offenders == []
