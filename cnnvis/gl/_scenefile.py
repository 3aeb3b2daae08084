"""A Scene saved as .npz (no pickle): for scripted use of `cnnvis-gl scene.npz` and for tests."""
from __future__ import annotations

import json
from dataclasses import MISSING, fields

import numpy as np

from cnnvis.errors import CnnvisError
from cnnvis.layout import FindingMark, NeuronDetail, Scene

__all__ = ["save_scene", "load_scene"]

_TUPLES = ("chart_names", "chart_snapshots", "chart_legend", "label_text", "class_names", "column_names",
           "column_layer", "chart_na", "rect_badge", "rect_note")
_RECORDS = ("findings", "details", "legend_extra")   # JSON strings in the archive


def save_scene(scene: Scene, path) -> None:
    arrays = {f.name: (np.asarray(getattr(scene, f.name), dtype=str) if f.name in _TUPLES
                       else getattr(scene, f.name)) for f in fields(Scene) if f.name not in _RECORDS}
    # records, not arrays: one JSON string each (an object array would need pickle to load)
    arrays["findings"] = np.asarray(json.dumps([m.to_dict() for m in scene.findings]))
    arrays["details"] = np.asarray(json.dumps([d.to_dict() for d in scene.details]))
    arrays["legend_extra"] = np.asarray(json.dumps(scene.legend_extra))
    np.savez_compressed(path, **arrays)


def load_scene(path) -> Scene:
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("a single array, not an .npz archive")
        with z:
            kw = {f.name: z[f.name] for f in fields(Scene) if f.name in z.files}
    except Exception as exc:  # np.load/zipfile raise many types on foreign or broken files
        raise CnnvisError(f"{path}: not a readable scene file ({exc})") from None
    required = [f.name for f in fields(Scene) if f.default is MISSING and f.default_factory is MISSING]
    missing = [name for name in required if name not in kw]
    if missing:
        raise CnnvisError(f"{path}: not a cnnvis scene file (no array named {', '.join(missing[:3])}"
                          f"{', ...' if len(missing) > 3 else ''}); analysis files are .cnnvis")
    for name in _TUPLES:
        if name in kw:
            kw[name] = tuple(str(s) for s in kw[name])
    try:
        if "findings" in kw:
            kw["findings"] = tuple(FindingMark.from_dict(d) for d in json.loads(str(kw["findings"])))
        if "details" in kw:
            kw["details"] = tuple(NeuronDetail.from_dict(d) for d in json.loads(str(kw["details"])))
        if "legend_extra" in kw:
            kw["legend_extra"] = tuple((str(t), tuple((None if c is None else tuple(float(v) for v in c), str(x))
                                                      for c, x in rows))
                                       for t, rows in json.loads(str(kw["legend_extra"])))
        return Scene(**kw).validate()
    except (TypeError, ValueError) as exc:
        raise CnnvisError(f"{path}: {exc}") from None
