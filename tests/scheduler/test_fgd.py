"""FGD's distinct node states: the hashed unique returns what numpy's row-wise unique does, whatever rows it is
given, and falls back to it when two rows share a hash."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from zhisuan.scheduler.nodescore import fgd

ROWS = arrays(np.int64, st.tuples(st.integers(1, 60), st.integers(1, 12)),
              elements=st.sampled_from([0, 1, 250, 500, 999, 1000, 2**40, -3]))


@given(ROWS)
def test_distinct_rows_are_numpys_and_index_back_to_every_row(keys):
    states, inverse = fgd.distinct(keys)
    assert np.array_equal(states[inverse], keys)
    assert len(states) == len(np.unique(keys, axis=0))
    assert sorted(map(tuple, states.tolist())) == sorted(map(tuple, np.unique(keys, axis=0).tolist()))


def test_rows_that_share_a_hash_fall_back_to_the_row_wise_unique(monkeypatch):
    monkeypatch.setattr(fgd, "_MIX", np.zeros(64, dtype=np.int64))  # every row hashes to 0
    keys = np.array([[1, 2], [3, 4], [1, 2]], dtype=np.int64)
    states, inverse = fgd.distinct(keys)
    assert states.tolist() == [[1, 2], [3, 4]] and inverse.tolist() == [0, 1, 0]


def test_wider_rows_than_the_multipliers_use_the_row_wise_unique():
    keys = np.tile(np.arange(70, dtype=np.int64), (3, 1))
    keys[1, 5] = -1
    states, inverse = fgd.distinct(keys)
    assert len(states) == 2 and np.array_equal(states[inverse], keys)
