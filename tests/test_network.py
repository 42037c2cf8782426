import importlib.util

import pytest

from zhisuan.model import SpecError, load_network, parse_network


def test_examples_load(root):
    toy = load_network(root / "examples/networks/toy3.yaml")
    assert len(toy.centers) == 3 and toy.devices == 136
    cn10 = load_network(root / "examples/networks/cn10.yaml")
    assert len(cn10.centers) == 10
    assert cn10.center("alibaba-zhangbei").pools[0].devices >= 38462


def test_cn10_is_generated_from_the_packaged_source(root):
    spec = importlib.util.spec_from_file_location("build_cn10", root / "tools/build_cn10.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (root / "examples/networks/cn10.yaml").read_text(encoding="utf-8") == mod.build()


def test_cn10_keeps_assumptions_marked(root):
    cn10 = load_network(root / "examples/networks/cn10.yaml")
    wuhan = cn10.center("wuhan-aicc")
    assert "pue" in wuhan.assumptions  # PUE 1.3 is ASSUMPTION in the source
    assert "accelerator" in wuhan.pools[0].assumptions
    assert all("price_per_device_hour" in p.assumptions for c in cn10.centers for p in c.pools)
    assert "pue" not in cn10.center("baidu-yangquan").assumptions  # PUE 1.09 is sourced


def _net(pools: str) -> str:
    return f"name: n\ncenters:\n  - name: a\n    region: east\n    pue: 1.2\n    carbon_kg_per_kwh: 0.5\n{pools}"


def test_bad_network_names_the_field():
    with pytest.raises(SpecError) as e:
        parse_network(_net("    pools:\n      - {name: p, accelerator: B200, nodes: 1, devices_per_node: 8, "
                           "price_per_device_hour: 1}\n"))
    assert "centers.0.pools.0.accelerator" in dict(e.value.errors)
    with pytest.raises(SpecError, match="pool names repeat"):
        parse_network(_net("    pools:\n" + "      - {name: p, accelerator: a100, nodes: 1, devices_per_node: 8, "
                           "price_per_device_hour: 1}\n" * 2))
    with pytest.raises(SpecError, match="price_per_cpu_hour: a CPU-only pool sells CPU-hours"):
        parse_network(_net("    pools:\n      - {name: c, accelerator: none, nodes: 1, devices_per_node: 0}\n"))
    cpu = parse_network(_net("    pools:\n      - {name: c, accelerator: none, nodes: 1, devices_per_node: 0, "
                             "price_per_cpu_hour: 0.2}\n")).centers[0].pools[0]
    assert cpu.cpu_price == (0.2, False) and cpu.price_per_device_hour == 0


def test_a_ray_centers_pools_run_single_node_gangs():
    net = parse_network("""
name: r
centers:
  - {name: rc, region: east, pue: 1.2, carbon_kg_per_kwh: 0.5, engine: ray,
     engine_config: {address: 'http://127.0.0.1:1', resources: {A100: a100}},
     pools: [{name: a100, accelerator: a100, nodes: 4, devices_per_node: 8, price_per_device_hour: 9}]}
""")
    assert net.centers[0].pools[0].max_gang_nodes == 1
