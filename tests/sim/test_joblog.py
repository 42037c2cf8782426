"""A replay's series keep every row it appends, in order, as numbers of full precision."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from zhisuan.sim.joblog import Series

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.integers(0, 3000), st.data())
def test_rows_read_back_as_appended(width: int, n: int, data: st.DataObject) -> None:
    rows = np.array(data.draw(st.lists(st.tuples(*[finite] * width), min_size=min(n, 3), max_size=min(n, 3))),
                    dtype=float).reshape(-1, width)
    s = Series(width)
    expected = []
    for k in range(n):  # many rows, a few of them drawn: the rest numbered, so order shows
        row = tuple(rows[k]) if k < len(rows) else tuple(float(k * width + c) for c in range(width))
        s.append(*row)
        expected.append(row)
        if k == n // 2:
            assert len(s) == k + 1
            assert s.table().shape == (k + 1, width)  # read midway: appending goes on after
    assert len(s) == n
    table = s.table()
    assert table.shape == (n, width)
    np.testing.assert_array_equal(table, np.array(expected, dtype=float).reshape(n, width))
    np.testing.assert_array_equal(s.table(), table)  # read twice, the same
    table[:] = -1.0
    assert n == 0 or s.table()[0, 0] != -1.0 or expected[0][0] == -1.0  # a copy: the caller's edits stay theirs
    s.take()  # handed over: what is appended next starts a new table
    assert len(s) == 0 and s.table().shape == (0, width)
    s.append(*map(float, range(width)))
    np.testing.assert_array_equal(s.table(), [list(map(float, range(width)))])
    taken = s.take()  # handed over: the series starts empty, and what was taken stays as it was
    assert len(s) == 0 and s.table().shape == (0, width)
    s.append(*[-2.0] * width)
    np.testing.assert_array_equal(taken, [list(map(float, range(width)))])
    np.testing.assert_array_equal(s.take(), [[-2.0] * width])
