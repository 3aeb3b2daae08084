"""The arrows of docs/architecture.md: which cnnvis package may import which, no import cycle between single
modules, no command-line parser below the app (lazy imports inside functions included in all three: they tie
the modules all the same), and the viewer staying free of torch and the analysis side at run time."""
import ast
import subprocess
import sys
from pathlib import Path

import cnnvis

ROOT = Path(cnnvis.__file__).resolve().parent

# package -> the cnnvis packages it may import (besides itself). Top-level modules count as packages.
ALLOWED = {
    "errors": set(),
    "progress": set(),
    "_params": {"errors"},
    "_atomic": set(),
    "graph": {"errors"},
    "data": {"_atomic", "errors", "progress"},
    "compute": {"_params", "errors"},
    "stats": {"compute", "errors"},
    "bicluster": {"compute", "errors"},
    "analysis": {"graph", "data", "compute", "stats", "_params", "_atomic", "errors", "progress"},
    "aggregate": {"compute", "bicluster", "stats", "_params", "errors"},
    "layout": {"aggregate", "_params", "errors"},
    "gl": {"layout", "_atomic", "errors"},
    "diagnose": {"analysis", "aggregate", "graph", "compute", "stats", "_params", "errors"},
    "diff": {"analysis", "graph", "_params", "errors", "progress"},
    "testing": {"graph", "data", "analysis", "compute", "stats", "aggregate", "layout", "_params", "errors"},
    "app": {"*"},
    "__init__": {"analysis", "diagnose", "errors"},
    "__main__": {"app"},
}


def _imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "cnnvis" and len(parts) > 1 and parts[1] != "_core":
                yield node.lineno, parts[1]


def test_every_import_follows_an_allowed_arrow():
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        owner = rel.parts[0].removesuffix(".py")
        assert owner in ALLOWED, f"cnnvis/{rel}: package {owner!r} has no row in ALLOWED (docs/architecture.md)"
        allowed = ALLOWED[owner]
        for line, target in _imports(path):
            if target != owner and "*" not in allowed and target not in allowed:
                bad.append(f"cnnvis/{rel}:{line} imports cnnvis.{target}")
    assert not bad, "imports against docs/architecture.md:\n" + "\n".join(bad)


def _module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def _module_imports(path: Path, modules: set, root: Path = ROOT) -> set:
    """The cnnvis modules `path` imports: `from pkg import name` counts as pkg.name where that is a module;
    relative imports resolved; a package's __init__ re-exporting its own children does not count."""
    me = _module_name(path, root)
    package = me.split(".") if path.name == "__init__.py" else me.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names] if base else []
        else:
            continue
        for t in targets:
            if t in modules and t != me and not t.startswith(me + ".") and not me.startswith(t + "."):
                out.add(t)
    return out


def _cycles(edges: dict) -> list:
    """Every strongly connected set of two or more modules (Tarjan), each as a sorted list."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while not part or part[-1] != v:
                part.append(stack.pop())
                on_stack.discard(part[-1])
            if len(part) > 1:
                found.append(sorted(part))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_modules():
    paths = sorted(ROOT.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    edges = {_module_name(p): _module_imports(p, modules) for p in paths}
    cycles = _cycles(edges)
    assert not cycles, "modules importing each other (split them by role):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_the_cycle_check_finds_a_cycle_through_lazy_and_relative_imports(tmp_path):
    pkg = tmp_path / "cnnvis" / "sub"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from cnnvis.sub.a import f\n")  # re-export: not a cycle
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def g():\n    from cnnvis.sub.c import h\n")
    (pkg / "c.py").write_text("import cnnvis.sub.a\n")
    (pkg / "d.py").write_text("from cnnvis.sub import a\n")
    root, paths = tmp_path / "cnnvis", sorted(pkg.rglob("*.py"))
    modules = {_module_name(p, root) for p in paths}
    edges = {_module_name(p, root): _module_imports(p, modules, root) for p in paths}
    assert edges["cnnvis.sub.d"] == {"cnnvis.sub.a"} and edges["cnnvis.sub"] == set()
    assert _cycles(edges) == [["cnnvis.sub.a", "cnnvis.sub.b", "cnnvis.sub.c"]]


def test_no_command_line_parser_below_the_app():
    users = []
    for path in sorted(ROOT.rglob("*.py")):
        if path.relative_to(ROOT).parts[0] == "app":
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] in ("argparse", "optparse", "getopt", "click") for n in names):
                users.append(f"cnnvis/{path.relative_to(ROOT)}:{node.lineno}")
    assert users == [], "command-line parsing belongs in cnnvis/app (docs/architecture.md): " + ", ".join(users)


def test_nothing_imports_the_application_layer():
    users = [f"cnnvis/{p.relative_to(ROOT)}" for p in ROOT.rglob("*.py")
             if p.relative_to(ROOT).parts[0] not in ("app", "__main__.py")
             and any(t == "app" for _, t in _imports(p))]
    assert users == []


def test_the_viewer_loads_neither_torch_nor_the_analysis_side():
    code = ("import sys, cnnvis.gl, cnnvis.gl.app; "
            "bad = [m for m in ('torch', 'cnnvis.analysis', 'cnnvis.graph', 'cnnvis.app', 'cnnvis.data') "
            "if m in sys.modules]; print(','.join(bad))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=ROOT.parent, env={"PYTHONPATH": str(ROOT.parent), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", f"import cnnvis.gl loaded {r.stdout.strip()}"

