"""The house rules that code review would otherwise have to remember, read from the sources.

* no import cycle anywhere under plugin/ (lazy imports inside functions count too);
* the core (flux_outpaint/) never imports gi, Pillow or numpy, and httpx is its only third-party
  import; only the GIMP glue imports gi;
* the journal stays storage: it never imports the network client;
* the core never imports the CLI or the local server; the CLI imports the local server only
  lazily (inside a function, for ``--local``), so the installed tool never needs numpy's
  test server to start.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "plugin"
PACKAGES = {
    "flux_outpaint": PLUGIN / "flux-outpaint" / "flux_outpaint",
    "gimp_glue": PLUGIN / "flux-outpaint" / "gimp_glue",
    "flux_outpaint_cli": PLUGIN / "flux_outpaint_cli",
    "flux_outpaint_fal_local": PLUGIN / "flux_outpaint_fal_local",
}


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            found[name] = path
    return found


def imports_of(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports, absolute names, wherever the import statement is."""
    package = name if path.stem == "__init__" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                # ``from . import scenarios`` imports the submodule, not the package's own
                # __init__ (which is already loaded by then): count the submodule only.
                full = f"{base}.{alias.name}"
                out.add(full if full in KNOWN else base)
    return out


def eager_imports_of(name: str, path: Path) -> set[str]:
    """The top-level modules ``name`` imports when it is loaded (not inside a function)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lazy: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            lazy.update(id(inner) for inner in ast.walk(node) if inner is not node)
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in lazy:
            continue
        if isinstance(node, ast.Import):
            out.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


KNOWN = modules()
GRAPH = {name: imports_of(name, path) for name, path in KNOWN.items()}


def project_edges(name: str) -> set[str]:
    return {dep for dep in GRAPH[name] if dep in GRAPH and dep != name}


def test_no_import_cycle_under_plugin():
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(project_edges(node)):
            if state.get(dep) == 1:
                cycles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def third_party(name: str) -> set[str]:
    tops = {dep.split(".")[0] for dep in GRAPH[name]}
    return {t for t in tops if t not in sys.stdlib_module_names and t not in PACKAGES and t}


@pytest.mark.parametrize("name", sorted(n for n in GRAPH if n.split(".")[0] == "flux_outpaint"))
def test_the_core_imports_only_the_standard_library_and_httpx(name):
    assert third_party(name) <= {"httpx"}
    tops = {dep.split(".")[0] for dep in GRAPH[name]}
    assert not tops & {"gimp_glue", "flux_outpaint_cli", "flux_outpaint_fal_local"}


@pytest.mark.parametrize("name", sorted(n for n in GRAPH if n.startswith("flux_outpaint_cli")))
def test_the_cli_imports_the_local_server_only_lazily(name):
    assert "flux_outpaint_fal_local" not in eager_imports_of(name, KNOWN[name])


def test_the_lazy_import_rule_sees_a_lazy_import():
    # --local starts the local server: the one place the CLI imports it, inside a function
    users = {
        n
        for n in GRAPH
        if n.startswith("flux_outpaint_cli.") and "flux_outpaint_fal_local" in GRAPH[n]
    }
    assert users, "the CLI's --local import was not found: the rule above checks nothing"


def test_only_the_glue_imports_gi():
    users = {name for name in GRAPH if "gi" in {dep.split(".")[0] for dep in GRAPH[name]}}
    assert users and {name.split(".")[0] for name in users} == {"gimp_glue"}


def test_the_journal_is_storage_only():
    assert "flux_outpaint.queue_client" not in GRAPH["flux_outpaint.journal"]
    assert not {dep for dep in GRAPH["flux_outpaint.journal"] if dep.startswith("httpx")}


# What lives in tests/: its modules, and the real-GIMP tests' package.
TEST_CODE = {path.stem for path in (ROOT / "tests").glob("*.py")} | {"gimp", "tests"}
SCRIPTS = sorted((ROOT / "scripts").glob("*.py"))


def script_imports(path: Path) -> set[str]:
    """The top-level names a script imports, wherever the import statement is."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: path.name)
def test_no_script_imports_test_code(path):
    assert not script_imports(path) & TEST_CODE
    # nor reaches into tests/ by path (a sys.path entry, a module loaded from its file)
    assert '/ "tests"' not in path.read_text(encoding="utf-8")


def test_the_script_rule_sees_an_import_of_test_code(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from gimp.sandbox import GimpSession\n", encoding="utf-8")
    assert "gimp" in script_imports(bad) & TEST_CODE
