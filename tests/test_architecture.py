"""The arrows of docs/architecture.md: which cnnvis package may import which (lazy imports inside functions
included), and the viewer staying free of torch and the analysis side at run time."""
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
    "graph": {"errors"},
    "data": {"errors", "progress"},
    "compute": {"errors"},
    "stats": {"compute", "errors"},
    "bicluster": {"compute", "errors"},
    "analysis": {"graph", "data", "compute", "stats", "errors", "progress"},
    "aggregate": {"compute", "bicluster", "stats", "errors"},
    "layout": {"aggregate", "errors"},
    "gl": {"layout", "errors"},
    "diagnose": {"analysis", "aggregate", "graph", "compute", "stats", "errors"},
    "diff": {"analysis", "graph", "errors", "progress"},
    "testing": {"graph", "data", "analysis", "compute", "stats", "aggregate", "layout", "errors"},
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
