"""Models and checkpoints as users have them: `pkg.module:factory` with literal keyword arguments, and state
dicts saved by plain `torch.save`, training loops (nested under 'state_dict'/'model'), DataParallel/DDP
('module.' prefixes), `torch.compile` ('_orig_mod.') or on a GPU. Never unpickles objects (weights_only)."""
from __future__ import annotations

import ast
import importlib
import os
import sys
from pathlib import Path

import torch

from cnnvis.errors import ModelError, first_line

__all__ = ["load_model", "parse_model_kwargs", "load_checkpoint", "apply_checkpoint"]

_NESTED_KEYS = ("state_dict", "model_state_dict", "model")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DataParallel / DistributedDataParallel; torch.compile


def parse_model_kwargs(items) -> dict:
    """['num_classes=10', 'dropout=0.2', "block='x'"] -> dict; each value a Python literal (ast.literal_eval:
    numbers, strings, True/False/None, tuples, lists, dicts), never evaluated as code."""
    out = {}
    for item in items or ():
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ModelError(f"--model-kwargs {item!r}: expected KEY=VALUE with a Python identifier as KEY")
        try:
            out[key] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise ModelError(f"--model-kwargs {item!r}: {text.strip()!r} is not a Python literal (numbers, "
                             "quoted strings, True/False/None, tuples, lists, dicts)") from None
    return out


def load_model(spec: str, kwargs: dict | None = None) -> torch.nn.Module:
    """The module that `spec` ('pkg.module:factory', a class or a function) returns for `kwargs`."""
    if ":" not in spec:
        raise ModelError(f"--model {spec!r}: expected PKG.MODULE:FACTORY")
    mod_name, attr = spec.split(":", 1)
    if os.getcwd() not in sys.path:
        # models defined in the user's working folder; last, so nothing there (a source checkout's cnnvis/)
        # shadows an installed package, here or in the processes this one spawns
        sys.path.append(os.getcwd())
    try:
        mod = importlib.import_module(mod_name)
    except (Exception, SystemExit) as exc:  # the user's module runs on import: any error, even sys.exit()
        raise ModelError(f"--model {spec!r}: cannot import {mod_name!r} ({type(exc).__name__}: "
                         f"{first_line(exc)})") from None
    factory = mod
    for part in attr.split("."):  # 'pkg.mod:Class.build' reaches class attributes too
        factory = getattr(factory, part, None)
    if factory is None or not callable(factory):
        raise ModelError(f"--model {spec!r}: {mod_name} has no callable {attr!r}")
    try:
        model = factory(**(kwargs or {}))
    except Exception as exc:  # the user's code: a wrong keyword, a bad value ... one line naming the call
        raise ModelError(f"--model {spec!r}: {attr}({_call_args(kwargs)}) failed: "
                         f"{type(exc).__name__}: {first_line(exc)}") from None
    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"--model {spec!r}: returned {type(model).__name__}, not a torch.nn.Module")
    return model


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A state dict from a checkpoint file, never unpickling arbitrary objects (weights_only=True), with
    tensors saved on a GPU mapped to the CPU. Accepts a bare state dict or one nested (at any depth) under
    'state_dict', 'model_state_dict' or 'model', as training loops save them."""
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path}: is a folder, not a checkpoint file")
    if not path.is_file():
        raise ModelError(f"{path}: no such checkpoint file")
    with open(path, "rb") as fh:
        start = fh.read(8)
    if not (start.startswith(b"PK\x03\x04") or start[:1] == b"\x80"):  # torch.save's zip, or a legacy pickle
        raise ModelError(f"{path}: not a loadable weights-only checkpoint: not a file torch.save writes (a zip "
                         f"or a pickle; this one starts with {start!r})")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/EOFError/... on bad files
        raise ModelError(f"{path}: not a loadable weights-only checkpoint ({first_line(exc)})") from None
    while isinstance(obj, dict) and not _is_state_dict(obj):
        inner = next((obj[k] for k in _NESTED_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict) or not obj or not _is_state_dict(obj):
        keys = ", ".join(map(str, list(obj)[:6])) if isinstance(obj, dict) else type(obj).__name__
        raise ModelError(f"{path}: the checkpoint holds no state dict of tensors (top level: {keys or 'empty'})")
    return obj


def apply_checkpoint(model: torch.nn.Module, state: dict, source: str) -> None:
    """Load `state` into `model` (wrapper prefixes removed), with an error naming the missing, unexpected
    or mis-shaped tensors (a few of each)."""
    own = model.state_dict()
    state = strip_wrapper_prefixes(state, own)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (" + ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "") + ")")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (" + ", ".join(unexpected[:5])
                        + (" ..." if len(unexpected) > 5 else "") + ")")
    if shapes:
        problems.append("shape mismatch " + "; ".join(shapes[:3]) + (" ..." if len(shapes) > 3 else ""))
    if problems:
        raise ModelError(f"{source}: checkpoint does not fit {type(model).__name__}: " + "; ".join(problems))
    model.load_state_dict(state)


def strip_wrapper_prefixes(state: dict, own: dict) -> dict:
    """Drop 'module.' / '_orig_mod.' from every key while all keys carry it and the model's own keys do not
    (a model with a real sub-module called 'module' keeps its names)."""
    changed = True
    while changed and state:
        changed = False
        for p in _WRAPPER_PREFIXES:
            if all(k.startswith(p) for k in state) and not all(k.startswith(p) for k in own):
                state = {k[len(p):]: v for k, v in state.items()}
                changed = True
    return state


def _is_state_dict(obj: dict) -> bool:
    return bool(obj) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def _call_args(kwargs) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in (kwargs or {}).items())
