"""The VisPy viewer of cnnvis: instanced GL programs drawing a `cnnvis.layout.Scene`.

In the shape of pygfx: the Scene is data (cnnvis.layout), the view state a frozen ViewState, the renderer
(`_renderer`: programs, buffers, textures) draws them, the overlay (`_overlay`: panel, chart, text,
tooltip) is composed from them, the controller (`_controller`) maps events to actions as pure functions,
and the Viewer is the façade that ties them to a canvas. Edits go out as cnnvis.layout's edit records.

Nothing here imports torch or the analysis. Choose the VisPy backends before creating a Viewer:
`vispy.use(app="glfw", gl="gl+")` for a window, `vispy.use(app="egl", gl="gl+")` offscreen (with
EGL_PLATFORM=surfaceless PYOPENGL_PLATFORM=egl set before OpenGL is imported); `cnnvis.gl.app.run(...)` does it.
"""
from cnnvis.gl._scenefile import load_scene, save_scene
from cnnvis.gl._shaders import load_shader, shader_dir, shader_source
from cnnvis.gl._state import EDGE_MODES, FACETS, ViewState
from cnnvis.layout._edits import Edit, ExpandColumn, MergeBundles, MoveNeuron, SelectSnapshot

__all__ = ["Viewer", "ViewState", "FACETS", "EDGE_MODES", "Edit", "MoveNeuron", "MergeBundles", "ExpandColumn",
           "SelectSnapshot", "load_shader", "shader_dir", "shader_source", "save_scene", "load_scene", "run"]


def __getattr__(name):
    # Lazy: importing cnnvis.gl must not pull in vispy's GL before the caller chose the backends.
    if name == "Viewer":
        from cnnvis.gl._viewer import Viewer

        return Viewer
    if name == "run":
        from cnnvis.gl.app import run

        return run
    raise AttributeError(f"module 'cnnvis.gl' has no attribute {name!r}")
