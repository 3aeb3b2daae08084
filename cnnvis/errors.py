"""Errors that cnnvis raises on bad input. The commands print them as one line and exit with code 2."""

__all__ = ["CnnvisError", "DataError", "ModelError", "AnalysisFileError", "DeviceError"]


class CnnvisError(ValueError):
    """Base class: bad input or an unusable file, with a message that names the thing that is wrong."""


class DataError(CnnvisError):
    """A data set, label array or activation array is missing, malformed or inconsistent."""


class ModelError(CnnvisError):
    """A model cannot be traced or analysed, or a checkpoint does not fit it."""


class AnalysisFileError(CnnvisError):
    """A .cnnvis file is truncated, corrupt, or written by a newer version."""


class DeviceError(CnnvisError):
    """device="cuda" was asked for where CUDA is not usable."""
