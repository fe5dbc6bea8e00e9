# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The package's structure (issue #20): no import cycles, one definition of each decision, short modules."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "astro_deepcr"


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules():
    return {_module_name(path): path for path in PACKAGE.rglob("*.py") if path.name != "_version.py"}


def _imports(name, path, known):
    """Modules of the package that ``name`` imports, at module level or inside functions (lazy imports)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            # importing a.b.c runs a/__init__ and a/b/__init__ as well
            parts = target.split(".")
            for end in range(1, len(parts) + 1):
                candidate = ".".join(parts[:end])
                if candidate in known and candidate != name and not name.startswith(candidate + "."):
                    found.add(candidate)
    return found


def import_graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def find_cycle(graph):
    """One cycle of ``graph`` as a list of nodes, or None."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == "open":
                return stack[stack.index(child):] + [child]
            if child not in state:
                cycle = visit(child, stack)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                return cycle
    return None


def test_find_cycle_finds_a_lazy_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a"}}) is None


def test_import_graph_reads_relative_and_lazy_imports():
    graph = import_graph()
    assert "astro_deepcr.detection" in graph["astro_deepcr.deepcr"]
    assert "astro_deepcr.dq" in graph["astro_deepcr.drizzle.flag"]
    assert "astro_deepcr.selection" in graph["astro_deepcr.detection"]


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_core_never_imports_the_doors():
    graph = import_graph()
    core = ("astro_deepcr.detection", "astro_deepcr.dq", "astro_deepcr.bright", "astro_deepcr.engine",
            "astro_deepcr.zoo", "astro_deepcr.weights", "astro_deepcr.selection", "astro_deepcr.nets")
    doors = ("astro_deepcr.drizzle", "astro_deepcr.training", "astro_deepcr.evaluation", "astro_deepcr.cli",
             "astro_deepcr.fitsclean", "astro_deepcr.batch", "astro_deepcr.ccdproc_step", "astro_deepcr.demo")
    for module in core:
        wrong = {target for target in graph[module] if target.startswith(doors)}
        assert not wrong, f"{module} imports {sorted(wrong)}"


def _definitions(name):
    """Modules that define a function or assign a module-level name ``name``."""
    found = []
    for module, path in _modules().items():
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
                found.append(module)
            elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
                found.append(module)
    return found


@pytest.mark.parametrize(("name", "home"), [
    ("choose_model", "astro_deepcr.detection"),        # model choice
    ("select_model", "astro_deepcr.selection"),        # the card matching it uses
    ("default_threshold", "astro_deepcr.detection"),   # default threshold
    ("check_threshold", "astro_deepcr.detection"),
    ("choose_precision", "astro_deepcr.detection"),    # precision choice
    ("resolve_precision", "astro_deepcr.engine"),
    ("pixel_masks", "astro_deepcr.detection"),         # bad-pixel policy
    ("dq_masks", "astro_deepcr.dq"),
    ("CR_BIT", "astro_deepcr.dq"),                     # the CR bit
    ("DEFAULT_BITS", "astro_deepcr.dq"),
    ("DEFAULT_FILL_BITS", "astro_deepcr.dq"),
    ("grow_like_driz_cr", "astro_deepcr.dq"),
    ("saturated_pixels", "astro_deepcr.bright"),       # saturation
])
def test_one_definition(name, home):
    assert _definitions(name) == [home]


def _int_literals(value):
    """(module, line) of every integer literal ``value`` in the package, outside shape tuples."""
    found = []
    for module, path in _modules().items():
        tree = ast.parse(path.read_text())
        shapes = {id(element) for node in ast.walk(tree) if isinstance(node, ast.Tuple)
                  for element in node.elts}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and type(node.value) is int and node.value == value
                    and id(node) not in shapes):
                found.append((module, node.lineno))
    return found


def test_the_cr_bit_is_written_once():
    """4096 appears as a number only where `astro_deepcr.dq.CR_BIT` is defined (chip shapes aside)."""
    found = _int_literals(4096)
    assert [module for module, _ in found] == ["astro_deepcr.dq"], found


def test_no_module_over_500_lines():
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > 500}
    assert not long


def test_subpackages_import_one_way():
    """Collapsed to subpackages the graph has no cycle either: evaluation may use training, never back."""
    def package(module):
        parts = module.split(".")
        return ".".join(parts[:2]) if len(parts) > 1 else module

    collapsed = {}
    for module, targets in import_graph().items():
        collapsed.setdefault(package(module), set()).update(
            package(target) for target in targets if package(target) != package(module))
    cycle = find_cycle(collapsed)
    assert cycle is None, "subpackage import cycle: " + " -> ".join(cycle)
