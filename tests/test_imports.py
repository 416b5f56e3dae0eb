"""The package's import graph, read from the source with ``ast`` (nothing is imported): no circles and the
layers kept (see docs/architecture.md, "Layers").

Every ``import`` counts, at the top of a module or inside a function (a function-level import is a circle
hidden until the function runs), except those under ``if TYPE_CHECKING:``, which never run.

* no import cycle between labelwright's modules;
* ``web`` and ``api`` (handlers) never touch SQL: no ``sqlalchemy``, no tables (``Store``, the type, is fine);
* ``services`` never import ``api`` or ``web``; ``store`` imports nothing above it; ``quality`` imports only
  itself (numpy, scipy and the like are fine); the leaves (``errors``, ``timefmt``) import nothing of the
  package; nothing below the top imports ``app`` or the CLI;
* in ``web``, no module imports a private name of another, and no page module (one with ``add_routes``)
  imports another page module: what pages share lives in the modules below them;
* one copy of each shared rule (the time formatter, the 24 h cap on active time, the role lists, whether a
  webhook listens): its spelling appears in one module only.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "labelwright"


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # what it imports: a module name (labelwright's resolved to a module, others as written)
    names: tuple[str, ...]  # ``from target import names`` (empty for ``import target``)
    line: int
    top: bool  # at module level (not inside a function or class body)

    def where(self) -> str:
        return f"{self.source.replace('.', '/')}.py:{self.line}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(name: str) -> str:
    """A labelwright name to the module that defines it (``labelwright.web.render`` -> ``labelwright.web``)."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _imports_of(module: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: list[Import] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.orelse:
                    visit(sub, top)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    target = _resolve(alias.name) if alias.name.startswith("labelwright") else alias.name
                    found.append(Import(module, target, (), child.lineno, top))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: from the package, up level - 1
                    up = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                if not base.startswith("labelwright"):
                    found.append(Import(module, base, tuple(a.name for a in child.names), child.lineno, top))
                    continue
                for alias in child.names:  # ``from pkg import submodule`` imports the submodule
                    sub = f"{base}.{alias.name}"
                    target = sub if sub in MODULES else _resolve(base)
                    found.append(Import(module, target, (alias.name,), child.lineno, top))
            inner = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef)
            visit(child, inner)

    visit(tree, True)
    return found


def _all_imports() -> list[Import]:
    return [imp for module, path in MODULES.items() for imp in _imports_of(module, path)]


IMPORTS = _all_imports()


def _internal(imp: Import) -> bool:
    return imp.target in MODULES and imp.target != imp.source


def _in(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def _cycles(imports: list[Import]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as one cycle through it."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in imports:
        if _internal(imp):
            graph[imp.source].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    counter = 0

    def strongconnect(v: str) -> None:  # recursion depth is bounded by the number of modules (~200)
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    cycles = []
    for component in components:  # one concrete cycle per component: a shortest path back to its first module
        start = min(component)
        paths = {start: [start]}
        frontier = [start]
        cycle: list[str] = []
        while frontier and not cycle:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v] & component):
                    if w == start:
                        cycle = paths[v] + [start]
                        break
                    if w not in paths:
                        paths[w] = paths[v] + [w]
                        nxt.append(w)
                if cycle:
                    break
            frontier = nxt
        cycles.append(cycle)
    return sorted(cycles)


def _describe(cycle: list[str], imports: list[Import]) -> str:
    steps = []
    for a, b in zip(cycle, cycle[1:], strict=False):
        imp = next(i for i in imports if i.source == a and i.target == b)
        steps.append(f"    {a} -> {b}  ({imp.where()}{'' if imp.top else ', inside a function'})")
    return "\n".join([" -> ".join(cycle), *steps])


# ---- the checks' own checks: the graph reader finds what it must ---------------------------------------


def test_the_reader_sees_every_kind_of_import(tmp_path):
    source = (
        "from __future__ import annotations\n"
        "import labelwright.web.forms\n"
        "from typing import TYPE_CHECKING\n"
        "from labelwright.web import render, views\n"
        "from labelwright.web.views import layout as lay\n"
        "if TYPE_CHECKING:\n"
        "    from labelwright.api import deps\n"
        "def f():\n"
        "    import sqlalchemy\n"
        "    from labelwright.services import access\n"
        "class C:\n"
        "    def g(self):\n"
        "        from labelwright.store import Store\n"
    )
    path = tmp_path / "probe.py"
    path.write_text(source)
    got = {(i.target, i.names, i.top) for i in _imports_of("labelwright.web.probe", path)}
    assert ("labelwright.web.forms", (), True) in got
    assert ("labelwright.web", ("render",), True) in got  # a name: its module
    assert ("labelwright.web.views", ("views",), True) in got  # a submodule: the submodule
    assert ("labelwright.web.views", ("layout",), True) in got
    assert ("sqlalchemy", (), False) in got  # inside a function
    assert ("labelwright.services.access", ("access",), False) in got
    assert ("labelwright.store", ("Store",), False) in got  # in a method
    assert not any(t.startswith("labelwright.api") for t, _, _ in got)  # TYPE_CHECKING: never runs
    assert ("typing", ("TYPE_CHECKING",), True) in got  # the standard library and third parties: by name


def test_the_cycle_finder_finds_a_hidden_circle():
    made = [Import("labelwright.web", "labelwright.web.forms", (), 1, False),
            Import("labelwright.web.forms", "labelwright.web.views", (), 1, True),
            Import("labelwright.web.views", "labelwright.web", ("render",), 3, True),
            Import("labelwright.web.views", "labelwright.timefmt", (), 4, True)]
    cycles = _cycles(made)
    assert cycles == [["labelwright.web", "labelwright.web.forms", "labelwright.web.views", "labelwright.web"]]
    assert "inside a function" in _describe(cycles[0], made)
    assert _cycles(made[1:]) == []


def test_the_package_is_read():
    assert {"labelwright.web", "labelwright.services.queue", "labelwright.quality"} <= set(MODULES)
    assert len(IMPORTS) > 500


# ---- the package -------------------------------------------------------------------------------------------


def test_no_import_cycles():
    cycles = _cycles(IMPORTS)
    report = "\n\n".join(_describe(c, IMPORTS) for c in cycles)
    print(report or "no import cycles")
    assert not cycles, f"{len(cycles)} import cycle(s) between labelwright's modules:\n{report}"


# Every labelwright/cli*.py module (the CLI is split by noun and loaded lazily), found rather than listed.
CLI_MODULES = tuple(sorted(f"labelwright.{p.stem}" for p in [ROOT / "labelwright" / "cli.py",
                                                             *(ROOT / "labelwright").glob("cli_*.py")]))
assert len(CLI_MODULES) >= 5, CLI_MODULES

LAYERS = [
    # (who, may not import, why)
    (("labelwright.web", "labelwright.api"), ("sqlalchemy", "labelwright.store.tables", "labelwright.store.sql",
                                            "labelwright.store.queue_sql"),
     "handlers call services; SQL lives in services and store"),
    (("labelwright.services",), ("labelwright.api", "labelwright.web"), "services never import handlers"),
    (("labelwright.store",), ("labelwright.services", "labelwright.api", "labelwright.web"),
     "the store imports nothing above it"),
    (("labelwright.errors", "labelwright.timefmt", "labelwright.sandbox"), ("labelwright",),
     "leaves import nothing of the package"),
    (("labelwright.web", "labelwright.api", "labelwright.schema", "labelwright.questions"), ("labelwright.sandbox",),
     "code runs only through a service (services/runs.py: access, rate limit, concurrency cap)"),
    (("labelwright.schema", "labelwright.questions", "labelwright.consensus"),
     ("labelwright.services", "labelwright.store", "labelwright.api", "labelwright.web", "labelwright.assist"),
     "the schema and the question types are used by every layer and import none of them"),
    (("labelwright.services", "labelwright.store", "labelwright.quality", "labelwright.web", "labelwright.api",
      "labelwright.io", "labelwright.schema", "labelwright.questions"),
     ("labelwright.app", "labelwright.serving", "labelwright.__main__", *CLI_MODULES),
     "the app and the CLI are the top"),
]


def _layer_breaches(imports: list[Import]) -> list[str]:
    out = []
    for imp in imports:
        for who, banned, why in LAYERS:
            if _in(imp.source, *who) and _in(imp.target, *banned) and not _in(imp.target, imp.source):
                out.append(f"{imp.where()}: {imp.source} imports {imp.target} ({why})")
        if _in(imp.source, "labelwright.quality") and _in(imp.target, "labelwright") \
                and not _in(imp.target, "labelwright.quality"):
            out.append(f"{imp.where()}: {imp.source} imports {imp.target} (quality imports only itself)")
    return out


def test_layers():
    breaches = _layer_breaches(IMPORTS)
    assert not breaches, "imports across the layers:\n" + "\n".join(breaches)


def test_the_layer_check_catches_a_breach():
    made = [Import("labelwright.web.views", "sqlalchemy", ("select",), 9, False),
            Import("labelwright.services.queue", "labelwright.web", ("render",), 3, True),
            Import("labelwright.quality.glad", "labelwright.schema", ("ProjectSchema",), 5, True),
            Import("labelwright.quality.glad", "numpy", (), 4, True),
            Import("labelwright.store.sql", "labelwright.services.queue", (), 2, True),
            Import("labelwright.timefmt", "labelwright.errors", (), 2, True)]
    assert len(_layer_breaches(made)) == 5


def _page_modules() -> set[str]:
    pages = set()
    for module, path in MODULES.items():
        if _in(module, "labelwright.web"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if any(isinstance(n, ast.FunctionDef) and n.name == "add_routes" for n in tree.body):
                pages.add(module)
    return pages


def test_web_modules_share_only_public_names_and_pages_import_no_pages():
    pages = _page_modules()
    assert {"labelwright.web.label_pages", "labelwright.web.account"} <= pages
    problems = []
    for imp in IMPORTS:
        if not (_in(imp.source, "labelwright.web") and _in(imp.target, "labelwright")):
            continue
        private = [n for n in imp.names if n.startswith("_") and n != "__version__"]
        if private:
            problems.append(f"{imp.where()}: private {', '.join(private)} from {imp.target}")
        if imp.source in pages and imp.target in pages:
            problems.append(f"{imp.where()}: page module {imp.source} imports page module {imp.target}")
    assert not problems, "\n".join(problems)


# ---- one copy of each shared rule ------------------------------------------------------------------------

ONE_COPY = [
    # (what, a pattern of its definition, the one module allowed to spell it)
    ("the time formatter for people", r"strftime\(\s*[\"'][^\"']*%H", "labelwright/timefmt.py"),
    ("the day as people write it", r"[\"']%Y-%m-%d", "labelwright/timefmt.py"),
    ("the 24 h cap on active time", r"24 \* 3600 \* 1000|24 \* 60 \* 60 \* 1000|86_?400_?000",
     "labelwright/services/queue.py"),
    ("the organisation's roles", r"[\[(]\s*\"owner\",\s*\"manager\",\s*\"reviewer\",\s*\"annotator\"\s*[)\]]",
     "labelwright/services/access.py"),
    ("the project roles", r"[\[(]\s*\"annotator\",\s*\"reviewer\",\s*\"manager\"\s*[)\]]",
     "labelwright/services/access.py"),
    ("whether a webhook listens", r"kinds\s*=\s*'\*'|project_id IS NULL OR \w+\.project_id = :p",
     "labelwright/store/listeners.py"),
]


@pytest.mark.parametrize(("what", "pattern", "home"), ONE_COPY, ids=[w for w, _, _ in ONE_COPY])
def test_one_copy_of_each_shared_rule(what, pattern, home):
    found = sorted({str(path.relative_to(ROOT)) for path in MODULES.values()
                    if re.search(pattern, path.read_text(encoding="utf-8"))})
    assert found == [home], f"{what} is spelled in {found}: define it once, in {home}, and import it"


# Test folders that are not a subpackage of labelwright, and why.
TEST_ONLY_FOLDERS = {"browser": "the pages in Chromium", "cli": "the command line (labelwright/cli*.py)",
                     "deploy": "deploy/: proxies, systemd units, backups"}
UNTESTED_ALONE = {"demo": "data and schemas; the demo command is tested in tests/cli"}


def test_the_test_layout_mirrors_the_package():
    """tests/<name>/ for every subpackage labelwright/<name>/ (issue 11), and no other folder without a reason."""
    package = {p.name for p in (ROOT / "labelwright").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    tests = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert package - tests - set(UNTESTED_ALONE) == set(), "a subpackage without tests/<name>/"
    assert tests - package - set(TEST_ONLY_FOLDERS) == set(), "a test folder that mirrors nothing"
