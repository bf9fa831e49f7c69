"""The architecture a newcomer relies on, checked on the source itself.

- Only `store/` knows the schema: no SQL statement, no `db[...]` table and no query call
  anywhere in the core (`workbench/`) or the screens (`screens/`).
- The store imports nothing above it.
- No import cycle between modules, and none between packages (store <- workbench <-
  screens, with the command's entry point `workbench.cli` above them all, since it opens
  either a batch run or the TUI). Imports inside functions count; imports only for type
  checking (`if TYPE_CHECKING:`) do not, as they never run.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("store", "workbench", "screens")
ENTRY_POINT = "workbench.cli"

# The grep of the project's before-stop hook, plus the sqlite-utils table calls.
QUERY_CALL = re.compile(
    r"(db|conn|con|connection|cursor)\.(execute|executemany|executescript|query)\(|db\["
    r"|\.(rows_where|table_names|insert_all|upsert)\("
)
SQL_TEXT = re.compile(
    r"\b(select\s+[a-z_*(][^\"']{0,80}\sfrom\s|insert\s+into|delete\s+from|update\s+[a-z_]+\s+set"
    r"|create\s+(table|index)\s)",
    re.IGNORECASE,
)


def sources(*packages: str) -> dict[str, Path]:
    """Module name -> file, for every module of the packages."""
    modules = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def imported_modules(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project's modules `name` imports, anywhere in it but under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for statement in node.body
        for inner in ast.walk(statement)
    }
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            # `from package import module` imports the module; `from module import name` the module.
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    known = sources(*PACKAGES)
    return {name: imported_modules(name, path, known) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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


def package_of(module: str) -> str:
    return module if module == ENTRY_POINT else module.split(".")[0]


def test_no_sql_and_no_table_outside_the_store():
    hits = []
    for path in sources("workbench", "screens").values():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if QUERY_CALL.search(line) or SQL_TEXT.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert hits == [], "the schema belongs to store/:\n" + "\n".join(hits)


def test_the_checks_above_see_what_they_look_for():
    """The patterns find the SQL a stage used to hold (so the test above can fail)."""
    assert QUERY_CALL.search('row = context.db.execute("select id from notes").fetchone()')
    assert QUERY_CALL.search('context.db["corrections"].insert(row)')
    assert SQL_TEXT.search('"""select count(*) from nodes join episodes on episodes.id = nodes.episode_id"""')
    assert SQL_TEXT.search('"update adapters set run_id = null"')
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_store_imports_nothing_above_it():
    above = {
        module: sorted(target for target in targets if package_of(target) != "store")
        for module, targets in import_graph().items()
        if package_of(module) == "store"
    }
    assert {module: targets for module, targets in above.items() if targets} == {}


def test_no_import_cycle_between_modules():
    assert cycles(import_graph()) == []


def test_no_import_cycle_between_packages():
    graph = import_graph()
    assert len(graph) > 60, "the source was not found"
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        packages.setdefault(package_of(module), set()).update(
            package_of(target) for target in targets if package_of(target) != package_of(module)
        )
    assert packages["store"] == set()
    assert packages["workbench"] == {"store"}
    assert cycles(packages) == []


def test_the_distillation_plan_is_shared_without_a_cycle():
    """The plan a launch of several processes shares is imported by the distill stage, which
    sends it, and by the launch, whose other processes receive it; it imports nothing else of
    its package, so neither side needs the other. The package's `__init__` runs before any of
    its modules and imports nothing, so the TUI can read adapters without the training code."""
    graph = import_graph()
    assert "workbench.distill.plan" in graph["workbench.distill.stage"]
    assert "workbench.distill.plan" in graph["workbench.distill.launch"]
    assert sorted(t for t in graph["workbench.distill.plan"] if t.startswith("workbench.distill")) == []
    assert "workbench.distill.launch" not in graph["workbench.distill.stage"]
    assert graph["workbench.distill"] == set()
