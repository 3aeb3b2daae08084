"""The embedded default: a small CNN trained on scikit-learn's digits, analysed once and cached."""
from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["DEMO_DEFAULT", "demo_analysis_path"]

DEMO_DEFAULT = "basecnn-x0.25"


def demo_analysis_path() -> Path:
    """The demo's analysis file, built on first use (as `cnnvis analyze --demo` would)."""
    from cnnvis.data._train import cache_dir

    path = cache_dir() / "demo.cnnvis"
    if not path.is_file():
        from cnnvis.analysis import analyze
        from cnnvis.data import load_digits
        from cnnvis.data._train import demo_model

        print("cnnvis-gl: building the demo analysis (once; cached)", file=sys.stderr)
        data = load_digits()
        model, result, _ = demo_model(DEMO_DEFAULT, data)
        path.parent.mkdir(parents=True, exist_ok=True)
        analyze(model, data, snapshots=list(result.snapshots),
                meta={"demo_model": DEMO_DEFAULT, "test_accuracy": result.test_accuracy[-1]}).save(path)
    return path
