"""Data sets, the demo models, and training with snapshots."""
from cnnvis.data._datasets import (Dataset, load_dataset, load_digits, load_idx, load_image_folder,
                                   load_npz)
from cnnvis.data._models import DEMO_MODELS, BaseCNN, DeepLeNet, LeNet, build_model

__all__ = ["BaseCNN", "DEMO_MODELS", "Dataset", "DeepLeNet", "LeNet", "build_model", "demo_model",
           "load_dataset", "load_digits", "load_idx", "load_image_folder", "load_npz", "train"]


def __getattr__(name):
    if name in ("demo_model", "train"):
        from cnnvis.data import _train

        return getattr(_train, name)
    raise AttributeError(name)
