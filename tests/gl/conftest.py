"""GL tests render offscreen with EGL (Mesa llvmpipe here, any EGL driver in CI) and read pixels back.

The platform must be chosen before OpenGL is imported anywhere, hence at the top of this conftest."""
import os

os.environ.setdefault("EGL_PLATFORM", "surfaceless")
os.environ["PYOPENGL_PLATFORM"] = "egl"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import vispy  # noqa: E402

vispy.use(app="egl", gl="gl+")

from glhelpers import SIZE  # noqa: E402  (pytest puts tests/gl on sys.path)



@pytest.fixture
def make_viewer():
    from cnnvis.gl import Viewer

    made = []

    def make(scene, **kw):
        v = Viewer(scene, size=kw.pop("size", SIZE), **kw)
        v.canvas.events.ignore_callback_errors = False
        made.append(v)
        return v

    yield make
    for v in made:
        v.close()
