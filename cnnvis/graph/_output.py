"""The class scores in whatever a model returns: a tensor, a tuple or list, a dict, a dataclass or
HuggingFace's ModelOutput (`.logits`)."""
from __future__ import annotations

import dataclasses

import torch

from cnnvis.errors import ModelError

__all__ = ["pick_output", "describe_output"]


def pick_output(out, spec: str | int | None = None, *, model: str = "the model") -> torch.Tensor:
    """The logits in `out`. spec: None (a tensor as it is, else `.logits` / ["logits"]), an index into a
    tuple/list, or a key/attribute name. Raises ModelError listing what the output holds."""
    if spec is None:
        if isinstance(out, torch.Tensor):
            return out
        found = _field(out, "logits")
        if isinstance(found, torch.Tensor):
            return found
        raise ModelError(f"{model} returns {describe_output(out)}; choose the class scores with "
                         f"--model-output NAME|INDEX")
    key = int(spec) if isinstance(spec, str) and spec.lstrip("-").isdigit() else spec
    if isinstance(key, int) and isinstance(out, (tuple, list)):
        if -len(out) <= key < len(out) and isinstance(out[key], torch.Tensor):
            return out[key]
    elif isinstance(key, str):
        found = _field(out, key)
        if isinstance(found, torch.Tensor):
            return found
    raise ModelError(f"--model-output {spec}: {model} returns {describe_output(out)}, where {spec!r} names no tensor")


def _field(out, name: str):
    if isinstance(out, dict):  # HuggingFace's ModelOutput is an OrderedDict too
        return out.get(name)
    return None if isinstance(out, torch.Tensor) else getattr(out, name, None)  # dataclass, namedtuple


def describe_output(out) -> str:
    """One line: what an output holds (names/indices and shapes)."""
    def one(v):
        return "x".join(map(str, v.shape)) if isinstance(v, torch.Tensor) else type(v).__name__

    def kind(v):  # fx's Interpreter hands back immutable_dict / immutable_list
        return type(v).__name__.removeprefix("immutable_")

    if isinstance(out, torch.Tensor):
        return f"a tensor of shape {one(out)}"
    if isinstance(out, dict) or hasattr(type(out), "keys"):
        items = ", ".join(f"{k}: {one(v)}" for k, v in dict(out).items())
        return f"a {kind(out)} of {{{items}}}"
    if dataclasses.is_dataclass(out) and not isinstance(out, type):
        items = ", ".join(f"{f.name}: {one(getattr(out, f.name))}" for f in dataclasses.fields(out))
        return f"a {type(out).__name__} of {{{items}}}"
    if isinstance(out, (tuple, list)):
        items = ", ".join(f"[{i}] {one(v)}" for i, v in enumerate(out))
        return f"a {kind(out)} of {len(out)} ({items})"
    return f"a {type(out).__name__}"
