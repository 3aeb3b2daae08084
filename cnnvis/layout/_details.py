"""What the viewer shows of one selected neuron, and the legend rows an application adds: frozen records
placed on a Scene (`Scene.details`, `Scene.legend_extra`). Data only: the layout knows nothing of where
the lines come from (a diff file's partner in model B, say; see cnnvis.app.diff_view).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NeuronDetail", "check_details", "check_legend"]


@dataclass(frozen=True)
class NeuronDetail:
    """The panel's card for one neuron, shown when a patch whose `Scene.patch_detail` names it is clicked.

    key: hashable and stable over the Scenes of one session (e.g. ("conv2", 7)), so the card stays open
    when an edit rebuilds the Scene. title: one line; color: RGBA swatch beside the title (() for none);
    lines: the card's text, one entry a line; image_rows: (caption, image indices) rows, each index a row of
    `Scene.detail_uv` (its picture in `Scene.detail_atlas`).
    """

    key: tuple
    title: str
    lines: tuple = ()
    color: tuple = ()
    image_rows: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "key", tuple(self.key))
        object.__setattr__(self, "lines", tuple(str(s) for s in self.lines))
        object.__setattr__(self, "color", tuple(float(c) for c in self.color))
        object.__setattr__(self, "image_rows", tuple((str(c), tuple(int(i) for i in ids))
                                                     for c, ids in self.image_rows))
        if len(self.color) not in (0, 4):
            raise ValueError(f"detail color must be RGBA (4 values) or empty, got {self.color}")

    def to_dict(self) -> dict:
        return dict(key=list(self.key), title=self.title, lines=list(self.lines), color=list(self.color),
                    image_rows=[[c, list(ids)] for c, ids in self.image_rows])

    @classmethod
    def from_dict(cls, d: dict) -> "NeuronDetail":
        if not isinstance(d, dict):
            raise TypeError(f"a detail record must be a mapping, got {type(d).__name__}")
        return cls(key=tuple(d.get("key", ())), title=str(d.get("title", "")), lines=tuple(d.get("lines", ())),
                   color=tuple(d.get("color", ())), image_rows=tuple(tuple(r) for r in d.get("image_rows", ())))


def check_details(details, n_images: int) -> list[str]:
    """Problems of a Scene's details (for Scene.validate): records, distinct keys, image indices in range."""
    bad, keys = [], set()
    for i, d in enumerate(details):
        if not isinstance(d, NeuronDetail):
            bad.append(f"details[{i}]: want a NeuronDetail, got {type(d).__name__}")
            continue
        if d.key in keys:
            bad.append(f"details[{i}]: key {d.key} given twice")
        keys.add(d.key)
        if not all(0 <= k < n_images for _, ids in d.image_rows for k in ids):
            bad.append(f"details[{i}]: image index outside 0..{n_images - 1}")
    return bad


def check_legend(sections) -> list[str]:
    """Problems of Scene.legend_extra: (title, ((RGBA or None, text), ...)) sections."""
    bad = []
    for i, sec in enumerate(sections):
        ok = isinstance(sec, tuple) and len(sec) == 2 and isinstance(sec[0], str) and isinstance(sec[1], tuple)
        ok = ok and all(isinstance(r, tuple) and len(r) == 2 and isinstance(r[1], str)
                        and (r[0] is None or len(r[0]) == 4) for r in sec[1])
        if not ok:
            bad.append(f"legend_extra[{i}]: want (title, ((RGBA or None, text), ...)), got {sec!r}"[:200])
    return bad
