"""NPV, IRR and payback against values computed by hand (and as a spreadsheet's NPV/IRR give them)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhisuan.metering.finance import irr, npv, payback_years, yearly_flows

# 100 invested, 30 back at the end of each of 5 years
FLOWS = [-100.0, 30.0, 30.0, 30.0, 30.0, 30.0]


def test_npv_by_hand():
    # 30 × (1 - 1.1^-5) / 0.1 = 113.7236; minus 100
    assert npv(0.10, FLOWS) == pytest.approx(13.7236, abs=1e-4)
    assert npv(0.0, FLOWS) == pytest.approx(50.0)


def test_irr_by_hand():
    rate = irr(FLOWS)
    assert rate == pytest.approx(0.152382, abs=1e-6)  # 30 × annuity(5, r) = 100
    assert npv(rate, FLOWS) == pytest.approx(0.0, abs=1e-6)
    assert irr([-100.0, 10.0, 10.0]) is not None and irr([-100.0, 10.0, 10.0]) < 0  # it loses money
    assert irr([100.0, 10.0]) is None  # nothing invested: no rate makes it zero


def test_payback_by_hand():
    assert payback_years(FLOWS) == pytest.approx(100 / 30)  # 3 years and a third
    # discounted at 10%: 27.27 + 24.79 + 22.54 + 20.49 = 95.10 after 4 years; year 5 brings 18.63
    assert payback_years(FLOWS, 0.10) == pytest.approx(4 + (100 - 95.0960) / 18.6276, abs=1e-3)
    assert payback_years([-100.0, 10.0, 10.0]) is None


def test_yearly_flows_and_bad_inputs():
    assert yearly_flows(100.0, 50.0, 20.0, 5, salvage=10.0) == [-100.0, 30.0, 30.0, 30.0, 30.0, 40.0]
    with pytest.raises(ValueError, match="years"):
        yearly_flows(100.0, 50.0, 20.0, 0)
    with pytest.raises(ValueError, match="opex"):
        yearly_flows(100.0, 50.0, math.inf, 5)
    with pytest.raises(ValueError, match="rate"):
        npv(-1.0, FLOWS)


@given(st.floats(1.0, 1e9), st.floats(1e-4, 1e3), st.integers(1, 30))
def test_the_irr_is_where_npv_crosses_zero_and_payback_within_the_years(capex, yearly_share, years):
    net = capex * yearly_share  # from 0.01% to 100,000% of the investment back each year
    flows = yearly_flows(capex, net, 0.0, years)
    rate = irr(flows)
    if sum(flows) > 0:  # it pays back within the horizon
        assert rate is not None and rate > -0.99
        assert abs(npv(rate, flows)) <= 1e-6 * capex
        back = payback_years(flows)
        assert back is not None and 0 < back <= years
        assert back == pytest.approx(capex / net, rel=1e-9)  # undiscounted, even flows: capex / yearly net
