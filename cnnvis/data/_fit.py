"""Does a data set fit a model's input? Checked before an analysis starts, so that a wrong channel count or an
image too small for the model's poolings reads as one line about the data, not a traceback from layer 40."""
from __future__ import annotations

import torch

from cnnvis.errors import DataError, first_line

__all__ = ["first_layer", "check_image_shape", "check_fits_model"]


def first_layer(model: torch.nn.Module):
    """(qualified name, module) of the first convolution or linear layer registered, or (None, None)."""
    for name, m in model.named_modules():
        if isinstance(m, (torch.nn.modules.conv._ConvNd, torch.nn.Linear)):
            return name, m
    return None, None


def check_image_shape(image_shape, *, in_channels: int | None = None, dims: int = 2,
                      name: str = "data set", layer: str = "the first layer") -> None:
    """`image_shape` (C, H, W) against the channel count and spatial rank a first layer expects."""
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 1 + dims:
        raise DataError(f"{name}: images of shape {shape} do not fit {layer}, which takes {dims}-d images "
                        f"with channels first")
    if in_channels is not None and shape[0] != in_channels:
        raise DataError(f"{name}: images have {shape[0]} channel{'s' if shape[0] != 1 else ''} "
                        f"({'x'.join(map(str, shape))}) but {layer} expects {in_channels}")


def check_fits_model(ds, model: torch.nn.Module) -> None:
    """The data set's images against the model: the first convolution's channels, then one image through
    the model (eval mode, no gradients) so sizes too small for its poolings or a mis-sized linear layer are
    named here."""
    shape = tuple(ds.image_shape)
    name, layer = first_layer(model)
    if isinstance(layer, torch.nn.modules.conv._ConvNd):
        dims = len(layer.kernel_size)
        check_image_shape(shape, in_channels=layer.in_channels, dims=dims, name=ds.name,
                          layer=f"layer {name!r} of {type(model).__name__}")
    param = next(model.parameters(), None)
    x = torch.from_numpy(ds.get([0]))
    if param is not None:
        x = x.to(device=param.device, dtype=param.dtype)
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    except Exception as exc:  # shape errors surface as RuntimeError/ValueError deep inside the model
        raise DataError(f"{ds.name}: images of shape {'x'.join(map(str, shape))} do not fit "
                        f"{type(model).__name__} ({first_line(exc)}); --input-size resizes them") from None
    finally:
        model.train(was_training)
