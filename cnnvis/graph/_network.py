"""The network as a DAG of layers and neurons: plain data, no torch (the viewer side can load it)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnnvis.errors import CnnvisError

__all__ = ["LAYER_KINDS", "CONNECTION_MODES", "Layer", "Connection", "NetworkGraph"]

LAYER_KINDS = ("input", "conv", "linear", "batchnorm", "activation", "pool", "add", "concat", "flatten",
               "dropout", "other")
# weight: learned matrix (conv kernel sums / linear weights); identity: element-wise (neuron i -> i);
# concat: src neurons land at dst[offset : offset + n_src].
CONNECTION_MODES = ("weight", "identity", "concat")


@dataclass(frozen=True)
class Layer:
    """One layer of the DAG.

    name: module qualified name (call of a module) or the traced node's name (call of a function).
    kind: one of LAYER_KINDS. n_neurons: channels of a feature map, units of a linear layer (a flatten keeps
    the channels of its input). inputs: names of the input layers. shape: per-sample output shape as
    (n_neurons, *spatial), e.g. (20, 12, 12) or (500,). op: the module class or function name. module: the
    called module's qualified name ("" for a function call); a module called at several places gives
    several layers with the same module.
    """

    name: str
    kind: str
    n_neurons: int
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    op: str = ""
    module: str = ""

    @property
    def spatial(self) -> tuple[int, ...]:
        return self.shape[1:]


@dataclass(frozen=True)
class Connection:
    """The neuron-to-neuron link from layer `src` into layer `dst`.

    weight, magnitude: (n_dst, n_src) float32 for mode "weight" (signed kernel sums and sums of |W|),
    None otherwise. offset: for mode "concat", where src's neurons start in dst.
    """

    dst: str
    src: str
    mode: str
    weight: np.ndarray | None = None
    magnitude: np.ndarray | None = None
    offset: int = 0


@dataclass(frozen=True)
class NetworkGraph:
    """Layers in topological order and the connections between them."""

    layers: tuple[Layer, ...]
    connections: tuple[Connection, ...]
    _by_name: dict = field(init=False, repr=False, compare=False)
    _by_edge: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_by_name", {l.name: i for i, l in enumerate(self.layers)})
        object.__setattr__(self, "_by_edge", {(c.dst, c.src): c for c in self.connections})

    # -- lookup ---------------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(l.name for l in self.layers)

    def layer(self, name: str) -> Layer:
        try:
            return self.layers[self._by_name[name]]
        except KeyError:
            raise CnnvisError(f"no layer named {name!r} (layers: {', '.join(self.names)})") from None

    def index(self, name: str) -> int:
        self.layer(name)
        return self._by_name[name]

    def successors(self, name: str) -> tuple[str, ...]:
        self.layer(name)
        return tuple(l.name for l in self.layers if name in l.inputs)

    def edges(self) -> tuple[tuple[str, str], ...]:
        """(dst, src) pairs in topological order of dst."""
        return tuple((c.dst, c.src) for c in self.connections)

    def edge(self, dst: str, src: str) -> Connection:
        try:
            return self._by_edge[(dst, src)]
        except KeyError:
            self.layer(dst)
            self.layer(src)
            raise CnnvisError(f"layer {src!r} does not feed layer {dst!r}") from None

    # -- neuron-to-neuron strengths --------------------------------------------------------------------
    def connection(self, dst: str, src: str) -> np.ndarray:
        """Signed strength matrix, shape (n_neurons of dst, n_neurons of src), float32."""
        return self._matrix(dst, src, signed=True)

    def magnitude(self, dst: str, src: str) -> np.ndarray:
        """Strength matrix from absolute weights, shape (n_neurons of dst, n_neurons of src), float32."""
        return self._matrix(dst, src, signed=False)

    def _matrix(self, dst: str, src: str, *, signed: bool) -> np.ndarray:
        c = self.edge(dst, src)
        if c.mode == "weight":
            return c.weight if signed else c.magnitude
        n_dst, n_src = self.layer(dst).n_neurons, self.layer(src).n_neurons
        m = np.zeros((n_dst, n_src), np.float32)
        off = c.offset if c.mode == "concat" else 0
        idx = np.arange(min(n_src, n_dst - off))
        m[off + idx, idx] = 1.0
        return m

    def weighted_layers(self) -> tuple[str, ...]:
        """Layers with learned connection weights (conv, linear), in order."""
        seen = []
        for c in self.connections:
            if c.mode == "weight" and c.dst not in seen:
                seen.append(c.dst)
        return tuple(seen)
