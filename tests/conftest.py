"""Fixtures shared by the aggregation and layout tests, and `cpu_path` for the compiled kernels' tests."""
import pytest

from cnnvis.aggregate import aggregate
from cnnvis.compute import _testing as core_testing
from cnnvis.compute import cpu_capability
from cnnvis.testing.synthetic import synthetic_network


@pytest.fixture(scope="module")
def net():
    """A small synthetic network with 4 planted neuron clusters per layer."""
    return synthetic_network([24, 24, 48, 40], n_clusters=4, seed=1)


@pytest.fixture(scope="module")
def agg(net):
    return aggregate(net.analysis)


@pytest.fixture(params=core_testing.cpu_capabilities())
def cpu_path(request):
    """Runs a test once per CPU path of the SIMD kernels this machine has ('default', 'avx2', 'avx512':
    the values of CNNVIS_CPU_CAPABILITY), switched in-process; restores the path afterwards."""
    before = cpu_capability()
    core_testing.set_cpu_capability(request.param)
    yield request.param
    core_testing.set_cpu_capability(before)
