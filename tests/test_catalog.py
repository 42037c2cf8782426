import pytest

from zhisuan.catalog import Accelerator, Catalog, UnknownAcceleratorError, load_catalog, normalise


def test_catalog_has_the_shared_table():
    cat = load_catalog()
    assert len(cat) == 25 + 7  # Epoch's rows copied, and the seven older and inference chips picked from it
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


def test_the_older_and_inference_chips_are_in_the_catalog_with_their_basis():
    c = load_catalog()
    for name, tflops in [("t4", 65.13), ("p100", 19.05), ("v100m16", 125), ("V100M32", 125), ("a10", 125),
                         ("l4", 121), ("a40", 149.7)]:
        assert c.lookup(name).fp16_tflops == tflops
    assert "fp16_tflops" in c.lookup("a10").assumptions  # derived from INT8, labelled ASSUMPTION
    assert "fp16_tflops" not in c.lookup("l4").assumptions


def test_a_user_catalog_extends_and_overrides(tmp_path, monkeypatch):
    from zhisuan.catalog.accelerators import use_catalog
    from zhisuan.catalog.user import CatalogError

    f = tmp_path / "mine.yaml"
    f.write_text("accelerators:\n"
                 "  - {name: G2, vendor: Alibaba, stack: cuda, fp16_tflops: 125, aliases: [g2],\n"
                 "     source: 'ASSUMPTION: internal code'}\n"
                 "  - {name: a100, vendor: NVIDIA, stack: cuda, fp16_tflops: 280, tdp_w: 400, source: measured here}\n",
                 encoding="utf-8")
    monkeypatch.delenv("ZHISUAN_CATALOG", raising=False)
    try:
        c = use_catalog(str(f))
        assert c.lookup("g2").name == "G2" and "fp16_tflops" in c.lookup("G2").assumptions
        mine = c.lookup("A100 SXM4 80GB")  # found by the packaged name and its aliases: the row was replaced
        assert mine.fp16_tflops == 280 and c.lookup("a100-80gb") is mine and "user catalog" in mine.source
        assert len(c) == len(use_catalog(None)) + 1
        f.write_text("accelerators:\n  - {name: X, vendor: Y, stack: cuda, fp16_tflops: .nan, source: s}\n",
                     encoding="utf-8")
        with pytest.raises(CatalogError, match=r"accelerators\.0\.fp16_tflops"):
            use_catalog(str(f))
    finally:
        use_catalog(None)
    with pytest.raises(UnknownAcceleratorError):
        load_catalog().lookup("g2")
