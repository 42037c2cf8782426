import math

import pytest

from zhisuan.catalog import load_catalog
from zhisuan.model import SpecError, load_network, parse_job_spec, request_from_spec
from zhisuan.scheduler.feasibility import check_spec

DESIGN_SPEC = """
name: llama-7b-sft
tenant: acme
kind: training
resources:
  accelerators: A100-80GB:8
  nodes: 2
  cpus: 32
  memory: 256Gi
  portable: [cuda, cann]
constraints:
  regions: [east, west]
  max_price: 18.0
  deadline: 2026-12-01T00:00:00+08:00
  data: shanghai
run: torchrun --nproc-per-node 8 train.py
"""


def test_design_spec_parses():
    spec = parse_job_spec(DESIGN_SPEC)
    assert spec.resources.accelerators.name == "A100 SXM4 80GB"
    assert spec.resources.devices == 16 and spec.resources.memory == 256.0
    req = request_from_spec(spec)
    assert req.model is None and req.stacks == {"cuda", "cann"} and req.ref_tflops == 312
    assert req.max_price == 18.0 and req.regions == {"east", "west"}


def test_class_request():
    spec = parse_job_spec("name: j\ntenant: t\nresources: {accelerators: {stack: CUDA, min_tflops: 300, count: 4}}"
                          "\nrun: x")
    req = request_from_spec(spec)
    assert (req.stacks, req.min_tflops, req.devices_per_node, req.max_price) == ({"cuda"}, 300, 4, math.inf)


def test_named_request_without_portable_is_exact():
    req = request_from_spec(parse_job_spec("name: j\ntenant: t\nresources: {accelerators: 910b3:2}\nrun: x"))
    assert req.model == "Ascend 910B3" and req.devices_per_node == 2


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("resources: {accelerators: A1000:8}", "resources.accelerators.name", "did you mean"),
        ("resources: {accelerators: {stack: cudaa}}", "resources.accelerators.stack", "unknown software stack"),
        ("resources: {accelerators: A100:8, nodes: 0}", "resources.nodes", "greater than or equal"),
        ("resources: {accelerators: A100:8, gpus: 2}", "resources.gpus", "Extra inputs"),
        ("resources: {accelerators: A100:8, portable: [cann]}", "", "own stack"),
        ("resources: {accelerators: A100:8}\nconstraints: {time_limit: 2 hours}", "constraints.time_limit",
         "not a duration"),
        ("resources: {accelerators: A100:8}\nconstraints: {deadline: 2026-12-01T00:00:00}", "constraints.deadline",
         "UTC offset"),
        ("resources: {accelerators: A100:8}\nconstraints: {max_price: -1}", "constraints.max_price", "greater than"),
        ("resources: {accelerators: A100:65}", "resources.accelerators.count", "less than or equal"),
    ],
)
def test_bad_spec_names_the_field(text, field, words):
    with pytest.raises(SpecError) as e:
        parse_job_spec(f"name: j\ntenant: t\nrun: x\n{text}")
    fields = dict(e.value.errors)
    assert field in fields, e.value.errors
    assert words in fields[field]


def test_malformed_yaml_and_non_mapping():
    with pytest.raises(SpecError, match="malformed YAML"):
        parse_job_spec("name: [x")
    with pytest.raises(SpecError, match="mapping"):
        parse_job_spec("- a\n- b")


@pytest.mark.parametrize(
    ("resources", "field", "words"),
    [
        ("{accelerators: A100-80GB:16}", "resources.accelerators", "largest accepted node has 8"),
        ("{accelerators: A100-80GB:8, nodes: 5}", "resources.nodes", "largest accepted pool has 4"),
        ("{accelerators: H100:1}", "resources.accelerators", "no pool"),
        ("{accelerators: 910b:8, cpus: 4000}", "resources.cpus", "at most 128"),
        ("{accelerators: 910b:8, memory: 4Ti}", "resources.memory", "at most 1024 GiB"),
        ("{accelerators: {stack: cuda, min_tflops: 5000}}", "resources.accelerators", "at least 5000 TFLOPS"),
    ],
)
def test_oversize_or_unavailable_is_rejected_against_network(root, resources, field, words):
    net = load_network(root / "examples/networks/toy3.yaml")
    spec = parse_job_spec(f"name: j\ntenant: t\nrun: x\nresources: {resources}")
    with pytest.raises(SpecError) as e:
        check_spec(spec, net)
    assert words in dict(e.value.errors)[field]


def test_price_cap_below_every_accepted_pool(root):
    net = load_network(root / "examples/networks/toy3.yaml")
    spec = parse_job_spec("name: j\ntenant: t\nrun: x\nresources: {accelerators: a100:1}\n"
                          "constraints: {max_price: 5}")
    with pytest.raises(SpecError) as e:
        check_spec(spec, net)
    assert dict(e.value.errors) == {"constraints.max_price": "max_price 5 CNY per device-hour, but the cheapest "
                                                             "accepted pool costs 8"}


def test_unknown_data_center_and_region(root):
    net = load_network(root / "examples/networks/toy3.yaml")
    spec = parse_job_spec("name: j\ntenant: t\nrun: x\nresources: {accelerators: a100:1}\n"
                          "constraints: {data: mars, regions: [moon]}")
    with pytest.raises(SpecError) as e:
        check_spec(spec, net)
    assert {"constraints.data", "constraints.regions"} == set(dict(e.value.errors))


BASE = "name: j\ntenant: t\nresources: {accelerators: a100:1}\n"


@pytest.mark.parametrize(("extra", "field"), [
    ('run: "sleep 1\\0"', "run"),
    ("run: x\nenv: {'A=B': c}", "env"),
    ("run: x\nenv: {'': c}", "env"),
    ('run: x\nenv: {A: "b\\0"}', "env"),
    ("run: x\nconstraints: {time_limit: .nan}", "constraints.time_limit"),
    ("run: x\nconstraints: {time_limit: .inf}", "constraints.time_limit"),
    ("run: x\nconstraints: {time_limit: 367d}", "constraints.time_limit"),
    ("run: x\nconstraints: {time_limit: 100000000000}", "constraints.time_limit"),
    ("run: x\nconstraints: {max_price: .inf}", "constraints.max_price"),
    ("run: x\nconstraints: {max_price: 1e400}", "constraints.max_price"),
    ("run: x\npriority: " + "9" * 5000, ""),
    ("run: x\nrun: y", ""),
    ("run: " + "x" * (64 * 1024 + 1), "run"),
])
def test_hostile_specs_are_refused_naming_the_field(extra, field):
    with pytest.raises(SpecError) as e:
        parse_job_spec(BASE + extra)
    assert field in [loc for loc, _ in e.value.errors], e.value.errors


def test_json_is_read_as_json():
    spec = parse_job_spec('{"name": "j", "tenant": "t", "resources": {"accelerators": "a100:1"}, '
                          '"run": "echo \\ud83d\\ude00", "env": {"MOOD": "\\u2603"}}')
    assert spec.run == "echo 😀" and spec.env == {"MOOD": "☃"}
    for bad in ('{"name": "j", "name": "k"}', '{"name": "j", "priority": NaN}'):
        with pytest.raises(SpecError, match="malformed JSON"):
            parse_job_spec(bad)


@pytest.mark.parametrize("accelerators", ['"T4|P100|v100m16:2"', "{any_of: [t4, p100, v100m16], count: 2}"])
def test_a_list_of_allowed_chips(accelerators):
    from zhisuan.model import request_from_spec

    spec = parse_job_spec(f"name: x\ntenant: a\nresources: {{accelerators: {accelerators}}}\nrun: echo")
    req = request_from_spec(spec)
    assert req.models == {"T4 16GB", "P100 PCIe 16GB", "V100 SXM2 16GB"} and req.devices_per_node == 2
    assert req.ref_tflops == 65.13  # estimates refer to the first listed
    cat = load_catalog()
    assert req.accepts(cat.lookup("p100")) and not req.accepts(cat.lookup("a100"))
    assert parse_job_spec(spec.model_dump(mode="json")) == spec  # the store keeps the spec as JSON


def test_an_unknown_chip_in_the_list_is_named():
    with pytest.raises(SpecError) as e:
        parse_job_spec('name: x\ntenant: a\nresources: {accelerators: "T4|B300:1"}\nrun: echo')
    assert "any_of" in e.value.errors[0][0] and "B300" in str(e.value)


def test_one_feasibility_remembers_each_ask_and_answers_it_the_same(root, monkeypatch):
    from zhisuan.scheduler import feasibility

    net = load_network(root / "examples/networks/toy3.yaml")
    monkeypatch.setattr(feasibility, "CACHED", 3)
    f = feasibility.Feasibility(net)
    fits = parse_job_spec("name: j\ntenant: t\nrun: x\nresources: {accelerators: a100:1}")
    too_big = parse_job_spec("name: j\ntenant: t\nrun: x\nresources: {accelerators: 910b:8, cpus: 4000}")
    for n in range(1, 6):  # ever new asks in between: the memory is emptied, the answers stay the same
        f.check(fits)
        with pytest.raises(SpecError) as e:
            f.check(too_big)
        assert "at most 128" in dict(e.value.errors)["resources.cpus"]
        f.check(parse_job_spec(f"name: j\ntenant: t\nrun: x\nresources: {{accelerators: a100:{n}}}"))
        assert len(f._unmet) <= 3
