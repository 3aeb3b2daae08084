"""Per-instance attribute layouts of the programs (structured dtypes, one `a_` field per attribute), apart
from the programs so that the pure parts (overlay, chart, controller) build instance arrays without GL."""
from __future__ import annotations

import numpy as np

__all__ = ["RECT_STATIC", "RECT_STATE", "CURVE_STATIC", "QUAD_STATIC", "QUAD_STATE"]

f4 = np.float32
RECT_STATIC = np.dtype([("a_box", f4, 4), ("a_fill", f4, 4), ("a_border", f4, 4), ("a_info", f4, 4)])
RECT_STATE = np.dtype([("a_state", f4, 4)])
CURVE_STATIC = np.dtype([("a_p01", f4, 4), ("a_p23", f4, 4), ("a_width", f4), ("a_values", f4, 3),
                         ("a_bundle", f4), ("a_color", f4, 4), ("a_ends", f4, 2)])
QUAD_STATIC = np.dtype([("a_box", f4, 4), ("a_uv", f4, 4), ("a_tint", f4, 4)])
QUAD_STATE = np.dtype([("a_alpha", f4)])
