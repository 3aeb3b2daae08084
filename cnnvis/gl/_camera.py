"""A 2D camera: world <-> pixel mapping for the view region, pan, zoom about a point, and an eased,
animated move to a target box that a timer (or a test) advances with `step(dt)`."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Camera", "ease_in_out"]

MIN_ZOOM, MAX_ZOOM = 1e-4, 1e3


def ease_in_out(u: float) -> float:
    """Cubic ease-in-out on 0..1."""
    u = min(max(u, 0.0), 1.0)
    return 4 * u ** 3 if u < 0.5 else 1 - (-2 * u + 2) ** 3 / 2


@dataclass
class _Flight:
    start: tuple      # (cx, cy, log zoom)
    target: tuple
    duration: float
    elapsed: float = 0.0


class Camera:
    """center (world), zoom (pixels per world unit) and the view region (x, y, w, h) in canvas pixels
    (origin bottom-left). World y grows upward, as canvas pixels do."""

    def __init__(self, center=(0.0, 0.0), zoom: float = 1.0, region=(0, 0, 1, 1)):
        self.center = np.array(center, np.float64)
        self.zoom = float(zoom)
        self.region = tuple(float(v) for v in region)
        self._flight: _Flight | None = None

    # -- mapping -------------------------------------------------------------------------------------
    def transform(self) -> tuple:
        """(sx, sy, ox, oy) with pixel = world * (sx, sy) + (ox, oy), for the u_transform uniform."""
        x, y, w, h = self.region
        z = self.zoom
        return (z, z, x + w / 2 - self.center[0] * z, y + h / 2 - self.center[1] * z)

    def to_pixel(self, world) -> np.ndarray:
        sx, sy, ox, oy = self.transform()
        w = np.asarray(world, np.float64)
        return w * (sx, sy) + (ox, oy)

    def to_world(self, pixel) -> np.ndarray:
        sx, sy, ox, oy = self.transform()
        p = np.asarray(pixel, np.float64)
        return (p - (ox, oy)) / (sx, sy)

    def _fit_params(self, box, margin: float) -> tuple:
        x0, y0, x1, y1 = (float(v) for v in box)
        _, _, w, h = self.region
        bw, bh = max(x1 - x0, 1e-6), max(y1 - y0, 1e-6)
        zoom = min((w - 2 * margin) / bw, (h - 2 * margin) / bh)
        return ((x0 + x1) / 2, (y0 + y1) / 2, math.log(min(max(zoom, MIN_ZOOM), MAX_ZOOM)))

    # -- moves ---------------------------------------------------------------------------------------
    def fit(self, box, margin: float = 24.0) -> None:
        """Show the world box whole, centred, at once (stops any flight)."""
        cx, cy, lz = self._fit_params(box, margin)
        self._flight = None
        self.center[:] = cx, cy
        self.zoom = math.exp(lz)

    def pan(self, dx_px: float, dy_px: float) -> None:
        """Move the content by (dx, dy) pixels (y up)."""
        self._flight = None
        self.center -= np.array([dx_px, dy_px]) / self.zoom

    def zoom_about(self, factor: float, pixel=None) -> None:
        """Zoom by factor keeping the world point under `pixel` (default: the region centre) in place."""
        self._flight = None
        x, y, w, h = self.region
        pixel = (x + w / 2, y + h / 2) if pixel is None else pixel
        anchor = self.to_world(pixel)
        self.zoom = min(max(self.zoom * factor, MIN_ZOOM), MAX_ZOOM)
        self.center += anchor - self.to_world(pixel)

    def fly_to(self, box, duration: float = 0.35, margin: float = 24.0) -> None:
        """Start an eased flight to show the box; centre moves linearly, zoom log-linearly, in eased time."""
        target = self._fit_params(box, margin)
        start = (float(self.center[0]), float(self.center[1]), math.log(self.zoom))
        if duration <= 0:
            self._flight = None
            self._apply(target)
            return
        self._flight = _Flight(start, target, float(duration))

    @property
    def animating(self) -> bool:
        return self._flight is not None

    @property
    def target(self):
        """(cx, cy, zoom) of the current flight, or None."""
        if self._flight is None:
            return None
        cx, cy, lz = self._flight.target
        return (cx, cy, math.exp(lz))

    def step(self, dt: float) -> bool:
        """Advance the flight by dt seconds; returns True while it is still in the air."""
        f = self._flight
        if f is None:
            return False
        f.elapsed += dt
        if f.elapsed >= f.duration - 1e-9:   # summed frame times round down
            self._apply(f.target)
            self._flight = None
        else:
            u = ease_in_out(f.elapsed / f.duration)
            self._apply(tuple(a + (b - a) * u for a, b in zip(f.start, f.target)))
        return self._flight is not None

    def _apply(self, params) -> None:
        self.center[:] = params[0], params[1]
        self.zoom = math.exp(params[2])
