"""House rules of the test suite: skips are reported and fail under `make test`, errors are named, dependency checks sit on the tests that need them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent


@pytest.mark.parametrize("body", [
    'torch = pytest.importorskip("surely_not_installed_module")\n\ndef test_a():\n    pass\n',
    'def test_a():\n    pytest.importorskip("surely_not_installed_module")\n',
    'def test_a():\n    pytest.skip("Chromium is not installed at /usr/bin/chromium")\n',
])
def test_make_test_fails_on_skips_for_what_it_installs(tmp_path, body):
    (tmp_path / "test_x.py").write_text("import pytest\n\n" + body)

    def run(require: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               "EDITANYTHING_REQUIRE_ALL": require}
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "skip_policy", "-p",
                               "no:cacheprovider", "-c", os.devnull, str(tmp_path / "test_x.py")],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)

    relaxed = run("0")
    assert relaxed.returncode in (0, 5) and "SKIPPED" in relaxed.stdout  # 5: a module-level skip left no test
    strict = run("1")
    assert strict.returncode != 0 and "make test" in strict.stdout


def test_pytest_reports_skips_and_make_test_requires_everything():
    root = TESTS.parent
    assert "-rs" in (root / "pytest.ini").read_text().split("addopts", 1)[1].splitlines()[0]
    assert "EDITANYTHING_REQUIRE_ALL=1 $(PY) -m pytest" in (root / "Makefile").read_text()


def test_tests_name_the_error_they_expect():
    import ast

    broad = []
    for path in sorted(TESTS.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "raises" and node.args
                    and isinstance(node.args[0], ast.Name) and node.args[0].id in ("Exception", "BaseException")):
                broad.append(f"{path.name}:{node.lineno}")
    assert broad == []


def test_tests_that_need_no_heavy_library_run_without_it(tmp_path):
    """The dependency checks sit on the tests that need them, not on the whole module."""
    (tmp_path / "block_heavy.py").write_text(
        "import sys\nfor name in ('torch', 'diffusers', 'h5py', 'safetensors', 'safetensors.numpy', 'transformers',\n"
        "             'groundingdino'):\n    sys.modules[name] = None\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "EDITANYTHING_REQUIRE_ALL": "0"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "block_heavy", "-p", "no:randomly",
                             *(str(TESTS / f) for f in ("test_prompts.py", "test_hed.py", "test_samplers.py",
                                                            "test_grounding_dino.py"))],
                            capture_output=True, text=True, env=env, cwd=TESTS.parent, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert int(summary.split(" passed")[0].split()[-1]) >= 25 and "skipped" in summary


# --- imports point down only ---------------------------------------------------------------------------------

# Each top-level module or package of editanything, lowest first; a module may import from its own layer
# or a lower one. A new module must be placed here.
LAYERS = (
    ("errors",),
    ("storage", "masks", "progress", "threads", "memory", "multipart"),
    ("types", "imageio"),
    ("models",),
    ("registry",),
    ("edges",),
    ("detect", "segment", "caption", "generate", "compose", "overlay", "matte", "check"),
    ("prompting", "sketch"),
    ("recipe",),
    ("pipeline", "generation", "sketch_recipe", "needs", "naming"),
    ("batch", "replay", "engines", "generate_batch"),
    ("cli", "ui", "server", "__main__", "__init__"),
)


def package_imports(root: Path) -> dict[str, set[str]]:
    """Top-level module → the top-level modules it imports (lazy imports inside functions count)."""
    import ast

    names = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def top(module: str) -> str:
        return module.split(".")[1] if "." in module else "__init__"

    graph: dict[str, set[str]] = {top(m): set() for m in names}
    for module, path in names.items():
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                targets = [".".join(base + ([node.module] if node.module else []))]
                if not node.module:  # `from . import x`: x is a module of that package
                    targets = [f"{targets[0]}.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                targets = [node.module or ""]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                if target.split(".")[0] == "editanything" and top(target) != top(module):
                    graph[top(module)].add(top(target))
    return graph


def import_problems(graph: dict[str, set[str]]) -> list[str]:
    """Every import that points up the LAYERS, every module missing from them, every cycle between modules."""
    layer = {name: i for i, names in enumerate(LAYERS) for name in names}
    problems = [f"{m} is in no layer of tests/test_house.py LAYERS" for m in sorted(graph) if m not in layer]
    problems += [f"{m} (layer {layer[m]}) imports {d} (layer {layer[d]}), which is above it"
                 for m in sorted(graph) for d in sorted(graph[m]) if m in layer and d in layer and layer[d] > layer[m]]

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    return path + [start]
                if nxt not in path:
                    stack.append((nxt, path + [nxt]))
        return None

    cycles = {tuple(sorted(c[:-1])): c for c in map(cycle_from, sorted(graph)) if c}
    problems += [f"import cycle: {' -> '.join(c)}" for c in cycles.values()]
    return problems


def test_imports_point_down_only_and_form_no_cycle():
    """`python -m pytest -q tests/test_house.py -k imports` lists any upward import or cycle."""
    graph = package_imports(TESTS.parent / "editanything")
    assert import_problems(graph) == []
    assert {"edges", "models"} <= graph["generate"] and "sketch" not in graph["generate"]  # the graph is read


def test_the_import_check_sees_upward_imports_lazy_ones_and_cycles(tmp_path):
    pkg = tmp_path / "editanything"
    for name, body in {"__init__.py": "", "types.py": "def f():\n    from .generate import g\n",
                       "generate/__init__.py": "from ..types import f\n", "errors.py": "from . import masks\n",
                       "masks.py": "from .errors import E\n", "newthing.py": ""}.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(body)
    problems = import_problems(package_imports(pkg))
    assert "newthing is in no layer of tests/test_house.py LAYERS" in problems
    assert "types (layer 2) imports generate (layer 6), which is above it" in problems
    assert "errors (layer 0) imports masks (layer 1), which is above it" in problems
    assert sum(p.startswith("import cycle: ") for p in problems) == 2  # types <-> generate, errors <-> masks
