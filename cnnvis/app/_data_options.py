"""The data and model options of `cnnvis analyze` (a parser lives only in the app layer) and turning parsed
arguments into a data set and a model: the parser calls `add_data_options` / `add_model_options`, the handler
`dataset_from_args`, `workers_from_args` and `model_from_args`. Errors are CnnvisErrors (one line, exit 2)."""
from __future__ import annotations

import argparse
import os

from cnnvis.errors import DataError

__all__ = ["add_data_options", "add_model_options", "dataset_from_args", "workers_from_args", "model_from_args",
           "FROM_FACTORY"]


def add_data_options(parser) -> None:
    parser.add_argument("--data", metavar="PATH",
                        help="'digits', a .npz, an IDX file/folder or an image folder (one sub-folder per class); "
                             "files are memory-mapped and folders decoded as they are read")
    parser.add_argument("--input-size", type=_positive_int, metavar="N",
                        help="resize each image's shorter side to N and crop the centre N x N")
    parser.add_argument("--normalize", default="none", metavar="SPEC",
                        help="per-channel normalisation after scaling to [0, 1]: imagenet, none (default), "
                             "MEAN,STD or [M1,M2,M3],[S1,S2,S3]")
    parser.add_argument("--workers", type=_non_negative_int, metavar="N",
                        help="DataLoader worker processes decoding images (default: min(4, CPUs) for image "
                             "folders, 0 for arrays)")


def add_model_options(parser, group=None) -> None:
    """--model (into `group`, e.g. one exclusive with --demo, when given), --model-kwargs, --weights."""
    (group or parser).add_argument("--model", metavar="PKG.MODULE:FACTORY",
                                   help="a callable returning the torch.nn.Module (a class or a function), "
                                        "e.g. torchvision.models:resnet50")
    parser.add_argument("--model-kwargs", nargs="+", default=[], metavar="KEY=VALUE",
                        help="keyword arguments for the factory, each value a Python literal "
                             "(e.g. num_classes=10 dropout=0.2 name='x')")
    parser.add_argument("--weights", metavar="CKPT.pt",
                        help="trained weights: a state dict, bare or nested under 'state_dict'/'model', with or "
                             "without DataParallel's 'module.' prefixes, saved on CPU or GPU (loaded weights-only); "
                             "without it (and --snapshots) the model is analysed as the factory returned it")
    # not --output: that is analyze's -o/--output file
    parser.add_argument("--model-output", metavar="NAME|INDEX",
                        help="where the class scores are in what the model returns: a tuple/list index or a "
                             "dict key/attribute name (default: a tensor as it is, else its .logits)")


def dataset_from_args(args):
    """The data set --data names, with --input-size and --normalize applied."""
    from cnnvis.data import open_dataset

    if not getattr(args, "data", None):
        raise DataError("--data is required with --model")
    return open_dataset(args.data, input_size=getattr(args, "input_size", None),
                        normalize=getattr(args, "normalize", None))


def workers_from_args(args, ds) -> int:
    """--workers, or the default for this kind of data set."""
    from cnnvis.data import ImageFolderDataset

    if getattr(args, "workers", None) is not None:
        return int(args.workers)
    return min(4, os.cpu_count() or 1) if isinstance(ds, ImageFolderDataset) else 0


FROM_FACTORY = "from the factory"


def model_from_args(args):
    """(model, weights) for --model built with --model-kwargs: its weights from --weights (or the last of
    --snapshots), else as the factory returned it (a factory that loads its own, `weights=` of torchvision);
    `weights` names the source for the file's meta."""
    from cnnvis.data._checkpoint import apply_checkpoint, load_checkpoint, load_model, parse_model_kwargs

    model = load_model(args.model, parse_model_kwargs(getattr(args, "model_kwargs", None)))
    snapshots = list(getattr(args, "snapshots", None) or [])
    weights = getattr(args, "weights", None) or (snapshots[-1] if snapshots else None)
    if weights is None:
        return model, FROM_FACTORY
    apply_checkpoint(model, load_checkpoint(weights), str(weights))
    return model, str(weights)


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
