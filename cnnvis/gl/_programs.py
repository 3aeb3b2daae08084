"""The instanced GL programs: one gloo.Program per primitive type, per-instance data in structured
VertexBuffers with divisor 1 (static data and the small view-state buffer kept apart, so a view change
re-uploads only the state), drawn with one call each."""
from __future__ import annotations

import numpy as np
from vispy import gloo

from cnnvis.gl._instances import CURVE_STATIC, QUAD_STATE, QUAD_STATIC, RECT_STATE, RECT_STATIC
from cnnvis.gl._shaders import shader_source

__all__ = ["RECT_STATIC", "RECT_STATE", "CURVE_STATIC", "QUAD_STATIC", "QUAD_STATE", "CURVE_SEGMENTS",
           "InstancedProgram", "make_programs"]

CURVE_SEGMENTS = 32

_QUAD = np.array([(0, 0), (1, 0), (0, 1), (1, 1)], np.float32)   # triangle strip corners


def _ribbon(segments: int) -> np.ndarray:
    t = np.repeat(np.linspace(0, 1, segments + 1, dtype=np.float32), 2)
    side = np.tile(np.array([-1, 1], np.float32), segments + 1)
    return np.stack([t, side], 1)


class InstancedProgram:
    """A program drawing `count` instances of one small triangle strip.

    `set(key, data)` uploads a structured array of per-instance attributes (a_ fields); buffers are
    reused while the instance count is unchanged and re-created when it changes. All instanced buffers
    must hold the same number of rows before `draw()`."""

    def __init__(self, name: str, vertex_attr: str, vertices: np.ndarray):
        vert, frag = shader_source(name)
        self.name = name
        self.program = gloo.Program(vert, frag)
        self.program[vertex_attr] = gloo.VertexBuffer(vertices)
        self.count = 0
        self._buffers: dict[str, gloo.VertexBuffer] = {}
        self.uploads: list[str] = []   # names of the buffers uploaded, for tests and the benchmark

    def set(self, key: str, data: np.ndarray) -> None:
        self.uploads.append(key)
        self.count = len(data)
        if not len(data):
            return
        buf = self._buffers.get(key)
        if buf is not None and buf.size == len(data) and buf.dtype == data.dtype:
            buf.set_data(data)
            return
        buf = gloo.VertexBuffer(np.ascontiguousarray(data), divisor=1)
        self._buffers[key] = buf
        for field in data.dtype.names:
            # Program.bind() would take views of the buffer, and views drop the divisor (VisPy 0.17):
            # set it on each view so the attribute stays per instance.
            view = buf[field]
            view.divisor = 1
            self.program[field] = view

    def __setitem__(self, name, value):
        self.program[name] = value

    def draw(self) -> None:
        if self.count:
            self.program.draw("triangle_strip")


def make_programs() -> dict:
    """The five programs: rect, curve, patch, matrix, text (needs a current GL context)."""
    return {
        "rect": InstancedProgram("rect", "a_corner", _QUAD),
        "curve": InstancedProgram("curve", "a_tside", _ribbon(CURVE_SEGMENTS)),
        "patch": InstancedProgram("patch", "a_corner", _QUAD),
        "matrix": InstancedProgram("matrix", "a_corner", _QUAD),
        "text": InstancedProgram("text", "a_corner", _QUAD),
    }
