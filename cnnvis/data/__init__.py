"""Data sets (in memory or streamed), models and checkpoints as users have them, the demo models, and
training with snapshots."""
from cnnvis.data._checkpoint import apply_checkpoint, load_checkpoint, load_model, parse_model_kwargs
from cnnvis.data._arrays import ArrayDataset, open_idx, open_npz
from cnnvis.data._base import StreamedDataset, parse_normalize
from cnnvis.data._datasets import (Dataset, in_memory, load_dataset, load_digits, load_idx, load_image_folder,
                                   load_npz, open_dataset)
from cnnvis.data._fit import check_fits_model, check_image_shape
from cnnvis.data._folders import ImageFolderDataset
from cnnvis.data._models import DEMO_MODELS, BaseCNN, DeepLeNet, LeNet, build_model

__all__ = ["ArrayDataset", "BaseCNN", "DEMO_MODELS", "Dataset", "DeepLeNet", "ImageFolderDataset", "LeNet",
           "StreamedDataset", "apply_checkpoint", "build_model", "check_fits_model", "check_image_shape",
           "demo_model", "in_memory", "load_checkpoint", "load_dataset", "load_digits", "load_idx", "load_image_folder",
           "load_model", "load_npz", "open_dataset", "open_idx", "open_npz", "parse_model_kwargs",
           "parse_normalize", "train"]


def __getattr__(name):
    if name in ("demo_model", "train"):
        from cnnvis.data import _train

        return getattr(_train, name)
    raise AttributeError(name)
