"""Model -> DAG of layers and neurons (torch.fx), and neuron-to-neuron connection matrices."""
from cnnvis.graph._network import CONNECTION_MODES, LAYER_KINDS, Connection, Layer, NetworkGraph

__all__ = ["CONNECTION_MODES", "LAYER_KINDS", "Connection", "Layer", "NetworkGraph", "from_torch"]


def __getattr__(name):
    # torch is imported only when a model is traced, so loading an analysis file does not need it.
    if name == "from_torch":
        from cnnvis.graph._trace import from_torch

        return from_torch
    raise AttributeError(name)
