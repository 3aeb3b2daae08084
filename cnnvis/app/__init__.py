"""The application layer: the commands, the session that turns viewer edits into new Scenes, the demo,
reports. The only package that imports both the analysis side and `cnnvis.gl`; nothing imports it."""
from cnnvis.app.commands import main, main_gl

__all__ = ["main", "main_gl"]
