"""Issue 13 screenshots: python3 make_shots.py DEMO.cnnvis OUT_PREFIX, run with PYTHONPATH=<checkout>.
Uses only Viewer methods that main and the viewer branch share."""
import os
import sys

os.environ.setdefault("EGL_PLATFORM", "surfaceless")
os.environ["PYOPENGL_PLATFORM"] = "egl"
import numpy as np  # noqa: E402
import vispy  # noqa: E402

vispy.use(app="egl", gl="gl+")
from vispy.io import write_png  # noqa: E402

from cnnvis.analysis import Analysis  # noqa: E402
from cnnvis.app.session import Session  # noqa: E402
from cnnvis.gl import Viewer  # noqa: E402

path, out = sys.argv[1], sys.argv[2]
SIZE = (1280, 800)
session = Session(Analysis.load(path))
v = Viewer(session.scene, on_edit=session.on_edit, size=SIZE)
write_png(f"{out}-1-demo.png", v.render())
# the widest layer cluster expanded, then Fit view (as the user did)
s = v.scene
col = int(np.argmax([s.rect_size[(s.rect_kind == 0) & (s.rect_column == c)][0] for c in range(len(s.column_names))]))
v.expand_column(col, animate=False)
v.fit()
write_png(f"{out}-2-expanded-fit.png", v.render())
# a tooltip by the panel: hover the patch nearest the panel's left edge
v.fit()
s = v.scene
W, H = v.size
best = None
for i in range(s.n_patches):
    b = s.patch_box[i]
    x, y = v.camera.to_pixel(((b[0] + b[2]) / 2, (b[1] + b[3]) / 2))
    wy = H - y
    if 0 < x < W - 250 and 200 < wy < H - 200 and (best is None or x > best[0]):
        best = (x, wy)
v.hover(*best)
write_png(f"{out}-3-tooltip-over-panel.png", v.render())
v.hover(5, 5)
v.set_facet("matrix")
write_png(f"{out}-4-matrix-facet.png", v.render())
print("wrote", out)
