"""Published qualitative results, reproduced on Philly as inequalities (not typed-in figures)."""

import numpy as np
import pytest

from zhisuan.scheduler import get_policy
from zhisuan.sim.engine import Simulator
from zhisuan.sim.readers import load_trace
from zhisuan.sim.scenario import trace_cluster


@pytest.fixture(scope="module")
def philly():
    return load_trace("philly").limit(20_000)


def avg_jct(trace, policy, siloed=False):
    r = Simulator(trace, trace_cluster(trace, siloed, 2), get_policy(policy)).run()
    return float(np.mean([j.end - j.trace.submit for j in r.jobs]))


def test_size_and_duration_aware_policies_beat_fifo(philly):
    """Helios (SC'21) QSSF and Tiresias (NSDI'19) LAS both report lower average JCT than FIFO."""
    fifo = avg_jct(philly, "fifo")
    assert avg_jct(philly, "qssf") < 0.8 * fifo
    assert avg_jct(philly, "las") < 0.8 * fifo


def test_one_network_beats_silos(philly):
    """The same nodes pooled as one network finish jobs sooner than isolated virtual clusters."""
    assert avg_jct(philly, "easy") < 0.8 * avg_jct(philly, "easy", siloed=True)
