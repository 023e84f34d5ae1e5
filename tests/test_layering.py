"""The package's layering (docs/architecture.md): lower stages never import higher ones, no import circles."""

import ast
import os

import albert_keras

PACKAGE_DIR = os.path.dirname(albert_keras.__file__)
# Lowest first; a module may import only from a lower rank or from its own component. The command
# modules (`*/commands.py`, `*_commands.py`) belong to the CLI, whatever package they sit in.
RANKS = {
    "errors": 0,
    "io_utils": 1,
    "compat": 2, "lazy": 2, "text_files": 2, "corpus": 2,
    "config": 3, "tokenization": 3,
    "modeling": 4, "data": 4,
    "tasks": 5,
    "training": 6, "export": 6, "convert": 6,
    "representations": 7, "inspection": 7,
    "cli": 8,
}
# Top-level modules that make up the CLI layer with `cli.py`.
CLI_MODULES = {"cli", "cli_args", "quickstart", "__main__", "inspection_commands"}


def _modules():
    """{dotted module name: path} for every module of the package."""
    modules = {}
    for directory, _, files in os.walk(PACKAGE_DIR):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                dotted = "albert_keras" + os.path.relpath(path, PACKAGE_DIR)[:-3].replace(os.sep, ".").join([".", ""])
                modules[dotted.removesuffix(".__init__")] = path
    return modules


def _imports(path, modules):
    """`(line, module)` for every import of a package module in `path`, at any depth (lazy ones too)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "albert_keras":
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            named = [m for m in submodules if m in modules]
            # `from albert_keras.x import y` imports the package `x` too, but only `y` when it is a module.
            for module in named or [node.module]:
                yield node.lineno, module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "albert_keras":
                    yield node.lineno, alias.name


def _component(module, path=None):
    parts = module.split(".")
    if path is not None:
        base = os.path.basename(path)
        if base == "commands.py" or base.endswith("_commands.py"):
            return "cli"
    elif len(parts) > 2 and (parts[2] == "commands" or parts[2].endswith("_commands")):
        return "cli"
    if len(parts) < 2:
        return None
    return "cli" if parts[1] in CLI_MODULES else parts[1]


def _graph():
    modules = _modules()
    return modules, {m: list(_imports(p, modules)) for m, p in modules.items()}


def test_nothing_imports_upward():
    modules, graph = _graph()
    offenders = []
    for module, imports in graph.items():
        source = _component(module, modules[module])
        if source is None:
            continue  # the package's own __init__ re-exports everything lazily
        for line, target in imports:
            destination = _component(target)
            if destination is None or destination == source:
                continue
            if RANKS[destination] >= RANKS[source]:
                offenders.append(f"{os.path.relpath(modules[module], PACKAGE_DIR)}:{line}: {source} -> {target}")
    assert not offenders, "imports that go up or sideways:\n" + "\n".join(offenders)


def test_every_component_has_a_rank():
    modules, _ = _graph()
    components = {_component(m, p) for m, p in modules.items()} - {None}
    assert components <= set(RANKS), f"add to RANKS and docs/architecture.md: {sorted(components - set(RANKS))}"


def _cycles(graph):
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_no_import_circles():
    modules, graph = _graph()
    # A package's __init__ that re-exports its modules is where imports of the package land, not a
    # module with logic of its own: edges into a package are followed to nothing.
    packages = {m for m, p in modules.items() if p.endswith("__init__.py")}
    edges = {m: sorted({t for _, t in imports if t in modules and t != m and t not in packages})
             for m, imports in graph.items()}
    assert _cycles(edges) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
