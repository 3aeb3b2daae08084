"""Three pictures of an analysis file's view: the first view, the matrix facet, and its biggest column
expanded (then fitted), each 1280x800 offscreen.

    python3 scripts/view_shots.py FILE.cnnvis PREFIX     # writes PREFIX-first.png, -matrix.png, -expanded.png

Made for issue 17's before/after pictures (docs/benchmarks/zoom.md): the same script run on the pre-wave tree
(43a7071, with PYTHONPATH pointing at its dev build) and on this one. It prints the expand's column counts and
time.
"""
import os, sys
os.environ.setdefault("EGL_PLATFORM", "surfaceless"); os.environ["PYOPENGL_PLATFORM"] = "egl"
import vispy; vispy.use(app="egl", gl="gl+")
from vispy.io import write_png
from cnnvis.analysis import Analysis
from cnnvis.app.session import Session
from cnnvis.gl._viewer import Viewer
from cnnvis.layout import ExpandColumn
path, prefix = sys.argv[1], sys.argv[2]
size = (1280, 800)
a = Analysis.load(path)
s = Session(a)
v = Viewer(s.scene, size=size)
write_png(prefix + "-first.png", v.render(size))
v.set_facet("matrix")
write_png(prefix + "-matrix.png", v.render(size))
v.set_facet("features")
agg = s.aggregation
big = max(range(len(agg.layer_clusters)), key=lambda c: len(agg.layer_clusters[c].layers))
import time; t = time.perf_counter()
new = s.on_edit(ExpandColumn(big))
print(prefix, "expand", agg.layer_clusters[big].name, "columns", len(agg.layer_clusters), "->", len(new.column_names), "in %.1f s" % (time.perf_counter() - t))
v.set_scene(new)
v.fit()
write_png(prefix + "-expanded.png", v.render(size))
