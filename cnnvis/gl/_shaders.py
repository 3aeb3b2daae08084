"""Finds and loads the GLSL files, with `#include "file"` expanded; cached.

The files live in `<repo>/shaders` in a source checkout and in `cnnvis/shaders` in an installed wheel
(CMake installs them there). The wheel location is tried first so an installed package never picks up a
stray checkout on the path.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

from cnnvis.errors import CnnvisError

__all__ = ["shader_dir", "load_shader", "shader_source", "PROGRAM_NAMES"]

PROGRAM_NAMES = ("rect", "curve", "patch", "matrix", "text")
_VERTEX = {"patch": "quad", "matrix": "quad"}   # programs that share a vertex shader (textured quads)
_INCLUDE = re.compile(r'^\s*#include\s+"([^"]+)"\s*$', re.MULTILINE)


@functools.lru_cache(maxsize=1)
def shader_dir() -> Path:
    """The folder that holds the shaders: the installed `cnnvis/shaders`, else the checkout's `shaders/`."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "shaders", package.parent / "shaders"):
        if (candidate / "rect.vert").is_file():
            return candidate
    raise CnnvisError(f"GLSL shaders not found in {package / 'shaders'} or {package.parent / 'shaders'}")


@functools.lru_cache(maxsize=None)
def load_shader(name: str) -> str:
    """The text of one shader file (e.g. "rect.vert") with its includes expanded, each file at most once."""
    return _expand(name, set())


def _expand(name: str, seen: set) -> str:
    path = shader_dir() / name
    if not path.is_file():
        raise CnnvisError(f"shader {name!r} not found in {shader_dir()}")
    seen.add(name)

    def include(match: re.Match) -> str:
        child = match.group(1)
        return "" if child in seen else _expand(child, seen)

    return _INCLUDE.sub(include, path.read_text(encoding="utf-8"))


def shader_source(program: str) -> tuple[str, str]:
    """(vertex, fragment) source of one visual, e.g. shader_source("curve")."""
    return load_shader(f"{_VERTEX.get(program, program)}.vert"), load_shader(f"{program}.frag")
