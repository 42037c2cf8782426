import pytest

from zhisuan.catalog import Accelerator, Catalog, UnknownAcceleratorError, load_catalog, normalise


def test_catalog_has_the_shared_table():
    cat = load_catalog()
    assert len(cat) == 25
    assert {"cuda", "cann", "rocm", "neuware", "dtk", "synapseai"} <= set(cat.stacks)


@pytest.mark.parametrize(
    ("alias", "model"),
    [("A100-80GB", "A100 SXM4 80GB"), ("a100", "A100 SXM4 80GB"), ("a100_40gb", "A100 SXM4 40GB"),
     ("910B3", "Ascend 910B3"), ("MI300X", "Instinct MI300X"), ("Ascend 910B (generic)", "Ascend 910B (generic)"),
     ("h800", "H800 SXM5 80GB")],
)
def test_lookup_by_name_and_alias(alias, model):
    assert load_catalog().lookup(alias).name == model


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownAcceleratorError) as e:
        load_catalog().lookup("A1000")
    assert "A100 SXM4 80GB" in e.value.suggestions
    assert "did you mean" in str(e.value)


def test_capacity_in_p_is_fp16_pflops():
    a100 = load_catalog().lookup("a100")
    assert a100.pflops(1000) == pytest.approx(312.0)
    assert a100.stack == "cuda" and a100.tdp_w == 400


def test_gap_filled_tdp_is_labelled_assumption():
    b3 = load_catalog().lookup("910b3")
    assert b3.tdp_w == 400
    assert b3.assumptions["tdp_w"].startswith("ASSUMPTION")
    assert not load_catalog().lookup("a100").assumptions


def test_alias_collision_is_refused():
    a = Accelerator("X 1", "v", "cuda", 1, 1, 1, "", None, "", aliases=("x",))
    b = Accelerator("X 2", "v", "cuda", 1, 1, 1, "", None, "", aliases=("X",))
    with pytest.raises(ValueError, match="names both"):
        Catalog([a, b])


def test_normalise_ignores_case_and_punctuation():
    assert normalise("A100-80GB") == normalise("a100 80gb") == "a10080gb"


def test_reference_prices_carry_their_source_and_pick_the_surest_row():
    from zhisuan.catalog.prices import NATIONAL, _rows, electricity_prices, server_prices

    rows = _rows("server_prices.csv")
    assert rows and all(r["source"] and r["as_of"] and r["confidence"] for r in rows)
    servers = server_prices()
    assert all(load_catalog().lookup(chip).name == chip for chip in servers)  # rows name catalog chips
    h100 = [r for r in rows if r["accelerator"] == "H100 SXM5 80GB"]
    assert servers["H100 SXM5 80GB"].confidence in {r["confidence"] for r in h100}
    assert servers["H100 SXM5 80GB"].confidence != "low"  # a medium row beats the grey-market quote
    power = electricity_prices()
    assert NATIONAL in power and 0.1 < power[NATIONAL].value < 2
    assert power["贵州"].as_of.startswith("2025")  # two low rows: the more recent wins
    assert "ASSUMPTION" not in power["北京"].basis
