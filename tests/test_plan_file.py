"""Plan files (capacity planning): checked whole, against the network they name, errors naming the field."""

import pytest

from tests.builders import ROOT
from zhisuan.model import SpecError
from zhisuan.model.plan import load_plan, parse_plan

EXAMPLE = ROOT / "examples" / "plans" / "cn10-growth.yaml"


def test_the_example_plan_reads_against_its_network():
    plan, network = load_plan(EXAMPLE)
    assert network.name == "cn10" and [o.name for o in plan.options][:2] == ["today", "wuhan-plus-32"]
    assert [c.name for c in network.centers] == ["wuhan-aicc", "hefei-acc", "chengdu-icc"]  # the plan's region
    assert [s.arrivals for s in plan.demand.scenarios] == [2.0, 4.0, 6.0] and plan.target.scenario == "x6"
    assert plan.finance.capex_per_node["Ascend 910A"] == 1_000_000  # chips by their catalog names
    assert "capex_per_node" in plan.finance.assumptions  # unsourced money stays labelled


@pytest.mark.parametrize(("change", "field"), [
    (("scenarios: [{name: x2, arrivals: 2}, {name: x4, arrivals: 4}, {name: x6, arrivals: 6}]",
      "scenarios: [{name: x1, arrivals: 0}]"), "demand.scenarios.0.arrivals"),
    (("{name: x6, arrivals: 6}]", "{name: x6, arrivals: .nan}]"), "demand.scenarios.2.arrivals"),
    (("{name: x6, arrivals: 6}]", "{name: x6, arrivals: 6, p_hours_per_month: 9}]"), "demand.scenarios.2"),
    (("stacks: [cuda, cann, dtk]", "stacks: [cuda, kann]"), "demand.stacks.1"),
    (("910a: 1000000", "a1000: 1200000"), "finance.capex_per_node"),
    (("discount_rate: 0.08", "discount_rate: -2"), "finance.discount_rate"),
    (("scenario: x6}", "scenario: x9}"), "target.scenario"),
    (("  - name: today\n", "  - name: today\n  - name: today\n"), "options.1.name"),
    (("horizon_years: 5", "horizon_years: 5\n  sunk: 1"), "finance.sunk"),
])
def test_bad_plans_name_the_field(change, field):
    text = EXAMPLE.read_text(encoding="utf-8").replace(*change)
    with pytest.raises(SpecError) as e:
        parse_plan(text)
    assert e.value.errors[0][0] == field, e.value.errors
    assert str(e.value)


@pytest.mark.parametrize(("change", "field"), [
    (("center: wuhan-aicc, pool: main", "center: atlantis, pool: main"), "options.1.add.0.center"),
    (("center: wuhan-aicc, pool: main", "center: wuhan-aicc, pool: gpu-h100"), "options.1.add.0.pool"),
    (("- name: guiyang-new", "- name: wuhan-aicc"), "options.4.build.0.name"),
    (("centers: [wuhan-aicc, hefei-acc, chengdu-icc]", "centers: [wuhan-aicc, atlantis]"), "centers.1"),
    (("network: ../networks/cn10.yaml", "network: ../networks/none.yaml"), "network"),
])
def test_a_plan_must_fit_its_network(tmp_path, change, field):
    networks = ROOT / "examples" / "networks"
    text = EXAMPLE.read_text(encoding="utf-8").replace(*change).replace("../networks/", f"{networks}/")
    plan = tmp_path / "plan.yaml"
    plan.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as e:
        load_plan(plan)
    assert e.value.errors[0][0] == field, e.value.errors


def test_an_option_applied_to_the_network():
    from zhisuan.model.plan import Option, apply, new_nodes

    plan, network = load_plan(EXAMPLE)
    base, more, built = (apply(plan.options[i], network) for i in (0, 1, 4))
    assert base.devices == network.devices  # the baseline changes nothing
    wuhan = next(p for c in more.centers if c.name == "wuhan-aicc" for p in c.pools)
    before = next(p for c in network.centers if c.name == "wuhan-aicc" for p in c.pools)
    assert wuhan.nodes == before.nodes + 32 and more.devices == network.devices + 32 * before.devices_per_node
    assert built.center("guiyang-new").name_zh == "贵阳新中心" and len(built.centers) == len(network.centers) + 1
    assert new_nodes(plan.options[1], network) == {before.chip.name: 32}
    assert new_nodes(plan.options[4], network) == {"Ascend 910B (generic)": 48}
    retire = Option.model_validate({"name": "retire-wuhan", "retire": [{"center": "wuhan-aicc", "pool": "main"}]})
    gone = apply(retire, network)
    assert "wuhan-aicc" not in {c.name for c in gone.centers}  # its only pool retired: the center goes
