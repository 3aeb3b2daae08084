"""The window's event loop: VisPy's glfw loop polls without pause (a full core while nothing happens);
this one sleeps in glfw.wait_events_timeout until an input event, a running timer's next tick or a
requested draw, so an idle window costs nothing and draws nothing."""
from __future__ import annotations

import math
from time import time

__all__ = ["run_glfw", "wait_time"]

IDLE_WAKE_S = 1.0   # an idle loop still wakes this often (to notice a closed window, Ctrl+C)


def wait_time(now: float, timer_due: list, needs_draw: bool) -> float:
    """How long the loop may sleep: 0 when a draw is pending, else until the next timer tick (capped)."""
    if needs_draw:
        return 0.0
    due = min(timer_due, default=math.inf)
    return float(min(max(due - now, 0.0), IDLE_WAKE_S))


def run_glfw() -> None:
    """Run VisPy's glfw application until every window is closed (in place of vispy.app.run())."""
    from vispy.app import use_app
    from vispy.app.backends import _glfw

    glfw, backend = _glfw.glfw, use_app()._backend
    wins = _glfw._get_glfw_windows

    def alive():
        return any(w._id is not None and not glfw.window_should_close(w._id) for w in wins())

    while alive():
        t = wait_time(time(), [tm._next_time for tm in backend._timers], any(w._needs_draw for w in wins()))
        if t > 0:
            glfw.wait_events_timeout(t)
        backend._vispy_process_events()   # polls (no wait), ticks due timers, draws windows that asked
    backend._vispy_quit()
