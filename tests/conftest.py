"""Fixtures shared by the aggregation and layout tests."""
import pytest

from cnnvis.aggregate import aggregate
from cnnvis.testing.synthetic import synthetic_network


@pytest.fixture(scope="module")
def net():
    """A small synthetic network with 4 planted neuron clusters per layer."""
    return synthetic_network([24, 24, 48, 40], n_clusters=4, seed=1)


@pytest.fixture(scope="module")
def agg(net):
    return aggregate(net.analysis)
