"""The house plan, checked: labs/ imports only downward, has no import circle, keeps modules short, imports at the
top (optional dependencies excepted, each with a comment), and every package names its modules."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LABS = ROOT / "labs"
# Lower layers never import higher ones; labs of one layer may use each other (without circles).
LAYERS = {"core": 0, "data": 1, "models": 2, "serving": 3, "runs": 4, "training": 5,
          "finetune": 6, "evaluation": 6, "arena": 6, "mixtures": 6, "attention": 6, "rag": 6, "catalog": 7}
# Imported inside a function on purpose: installed only where needed, or used by one rare path.
OPTIONAL = {"openvino", "openvino_genai", "uvicorn", "segno", "pypdf", "psutil", "sklearn"}
MAX_LABS_LINES, MAX_UI_LINES = 500, 300


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(LABS.rglob("*.py"))}


def _imports(path: Path):
    """(target module, node) for every import in the file, a submodule named in `from pkg import sub` included."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                       for a in node.names]
        else:
            continue
        for t in targets:
            yield t, node


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def _graph() -> dict[str, set[str]]:
    graph = {m: set() for m in MODULES}
    for m, path in MODULES.items():
        for target, _ in _imports(path):
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != m and target != "labs":
                graph[m].add(target)
    return graph


def test_no_import_circle_in_labs():
    graph, state, circles = _graph(), {}, []

    def visit(m, path):
        state[m] = "open"
        for t in sorted(graph[m]):
            if state.get(t) == "open":
                circles.append(" -> ".join(path[path.index(t):] + [t]) if t in path else f"{m} -> {t}")
            elif t not in state:
                visit(t, path + [t])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert circles == []


def test_labs_import_only_downward_and_never_the_page_layer():
    upward = []
    for m, path in MODULES.items():
        for target, node in _imports(path):
            assert not target.startswith(("streamlit", "ui")), f"{m} imports {target} (labs never imports pages)"
            if not target.startswith("labs.") or _layer(m) is None or _layer(target) is None:
                continue
            if _layer(target) > _layer(m):
                upward.append(f"{m}:{node.lineno} imports {target}")
    assert upward == []


def test_function_level_imports_are_only_optional_dependencies_with_a_comment():
    found = []
    for m, path in MODULES.items():
        lines = path.read_text().splitlines()
        tree = ast.parse(path.read_text())
        for f in ast.walk(tree):
            if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            for node in ast.walk(f):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    name = node.names[0].name if isinstance(node, ast.Import) else node.module or ""
                    if name.split(".")[0] not in OPTIONAL or "#" not in lines[node.lineno - 1]:
                        found.append(f"{m}:{node.lineno} {name}")
    assert sorted(set(found)) == []


@pytest.mark.parametrize("folder, limit", [("labs", MAX_LABS_LINES), ("ui", MAX_UI_LINES)])
def test_no_module_is_too_long(folder, limit):
    long = {str(p.relative_to(ROOT)): n for p in sorted((ROOT / folder).rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > limit}
    assert long == {}


def test_every_package_names_its_modules_in_its_docstring():
    missing = []
    for init in sorted(LABS.rglob("__init__.py")):
        if init.parent == LABS:
            continue
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        for p in sorted(init.parent.iterdir()):
            name = p.stem if p.suffix == ".py" else p.name if (p / "__init__.py").exists() else None
            if name and name != "__init__" and name not in doc:
                missing.append(f"{_name(init)}: {name}")
    assert missing == []
