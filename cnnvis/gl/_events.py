"""Window events -> Viewer calls: a press/move/release state machine (click, drag, the drag ghost, double
clicks), the wheel, keys, resizes, the timer that runs camera flights (started by the viewer, stopped
when the flight lands, so an idle window draws nothing) and the one that polls the application's pending
Scene and busy note. Uses only the Viewer's public methods.

Ctrl chords under glfw: VisPy's glfw backend holds back every printable key press until GLFW's character
callback brings its text, and GLFW sends no character while Ctrl is held, so Ctrl+Z never arrived (and the
held-back press then took the text of the next key typed). `_glfw_ctrl_chords` wraps the backend's key
callback so that a printable key pressed with Ctrl goes out at once, without text."""
from __future__ import annotations

from vispy import app

__all__ = ["WindowEvents", "POLL_S"]

POLL_S = 0.1   # how often a pending Scene and the application's busy() are polled


class WindowEvents:
    def __init__(self, viewer):
        self.viewer = viewer
        self._press = None                    # [x, y, pick, moved, last x, last y] of a press in progress
        self._undo_click = None               # cluster facets before the last click (see _on_double_click)
        ev = viewer.canvas.events
        ev.draw.connect(lambda e: viewer.draw(viewer.canvas.size))
        ev.resize.connect(lambda e: (viewer.resize(e.size), viewer.canvas.update()))
        ev.mouse_press.connect(self._on_press)
        ev.mouse_move.connect(self._on_move)
        ev.mouse_release.connect(self._on_release)
        ev.mouse_double_click.connect(self._on_double_click)
        ev.mouse_wheel.connect(lambda e: viewer.zoom(1.15 ** e.delta[1], at=e.pos))
        ev.key_press.connect(self._on_key)
        self._timer = app.Timer(1 / 60, connect=self._on_timer, start=False)
        self._poll_timer = app.Timer(POLL_S, connect=self._on_poll, start=False)
        _glfw_ctrl_chords(viewer.canvas)

    def animate(self) -> None:
        """Run the camera flight: the timer steps it until it lands."""
        self._timer.start()

    def poll(self) -> None:
        """Poll the application (a pending Scene, busy()) every POLL_S seconds while there is any."""
        if not self._poll_timer.running:
            self._poll_timer.start()

    def stop(self) -> None:
        self._timer.stop()
        self._poll_timer.stop()

    def _on_poll(self, event) -> None:
        if not self.viewer.guarded(self.viewer.poll):
            self._poll_timer.stop()

    def _on_timer(self, event) -> None:
        if not self.viewer.step(min(event.dt or 1 / 60, 0.1)):
            self._timer.stop()

    def _on_press(self, e) -> None:
        if e.button != 1:
            return
        x, y = e.pos
        self._press = [x, y, self.viewer.pick(x, y), False, x, y]

    def _on_move(self, e) -> None:
        v = self.viewer
        x, y = e.pos
        p = self._press
        if p is None or not e.is_dragging:
            v.hover(x, y)
            return
        if p[3] is False and abs(x - p[0]) + abs(y - p[1]) > 3:
            p[3] = True
        if p[3] is not True:
            return
        kind, target = p[2]
        if kind == "patch":
            v.update_state(drag_ghost=(float(x), float(v.size[1] - y)))
        elif kind == "widget" and target.action == ("threshold",):
            v.guarded(v.drag, p[0], p[1], x, y)
        elif kind != "widget":
            v.pan(x - p[4], y - p[5])
        p[4], p[5] = x, y

    def _on_release(self, e) -> None:
        v = self.viewer
        p, self._press = self._press, None
        if p is None or e.button != 1:
            return
        x, y = e.pos
        v.update_state(drag_ghost=())
        if p[3] == "double":
            pass
        elif not p[3]:
            self._undo_click = v.state.cluster_facet
            v.guarded(v.click, x, y)
        elif p[2][0] == "patch":
            v.guarded(v.drag, p[0], p[1], x, y)

    def _on_double_click(self, e) -> None:
        v = self.viewer
        # The first click of the pair already cycled a cluster's facet: undo that, and let the second
        # release do nothing, so a double-click only zooms.
        if self._undo_click is not None and self._undo_click != v.state.cluster_facet:
            v.update_state(cluster_facet=self._undo_click)
        self._undo_click = None
        # VisPy emulates double-clicks for glfw and sends them without a position (0, 0): use the press's.
        x, y = e.pos
        if self._press is not None:
            self._press[3] = "double"
            x, y = self._press[0], self._press[1]
        v.guarded(v.double_click, x, y)

    def _on_key(self, e) -> None:
        v = self.viewer
        name = e.key.name if e.key is not None else ""
        mods = {m.name.lower() if hasattr(m, "name") else str(m).lower() for m in (e.modifiers or ())}
        if "control" in mods and len(name) == 1:      # Ctrl+Z, Ctrl+Shift+Z: e.text is a control char
            name = "ctrl+" + ("shift+" if "shift" in mods else "") + name.lower()
        elif e.text and len(e.text) == 1 and e.text.isprintable():
            name = e.text
        if name == "Escape":
            v.update_state(selected_bundles=(), show_help=False, detail=())
            v.select_classes(())
            return
        v.guarded(v.key, name)


def _glfw_ctrl_chords(canvas) -> None:
    """Under VisPy's glfw backend, send printable keys pressed with Ctrl as key presses straight away (see
    the module); other keys and other backends are left as they are."""
    backend = getattr(canvas, "_backend", None)
    if type(backend).__module__ != "vispy.app.backends._glfw" or getattr(backend, "_id", None) is None:
        return
    from vispy.app.backends._glfw import glfw
    from vispy.util import keys

    held_back = backend._on_key_press

    def on_key(window, key, scancode, action, mods):
        if action == glfw.PRESS and mods & glfw.MOD_CONTROL and 32 <= key <= 127 and \
                backend._vispy_canvas is not None:
            backend._vispy_canvas.events.key_press(key=keys.Key(chr(key)), text="", modifiers=list(backend._mod))
            return
        held_back(window, key, scancode, action, mods)

    glfw.set_key_callback(backend._id, on_key)
