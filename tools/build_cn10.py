"""Build examples/networks/cn10.yaml from the package copy of example_network.json.

Every value that the source marks ASSUMPTION, or that we had to choose because the source has none,
lands in the center's or pool's `assumptions` with the reason. Run: python tools/build_cn10.py
"""

from __future__ import annotations

import json
import math
import sys
from importlib import resources
from pathlib import Path

import yaml

from zhisuan.catalog import load_catalog

OUT = Path(__file__).resolve().parent.parent / "examples" / "networks" / "cn10.yaml"

# Province -> region: geographic convention, not from a source.
REGION = {"湖北": "central", "江苏": "east", "安徽": "east", "上海": "east", "广东": "south",
          "河北": "north", "内蒙古": "north", "山西": "north", "四川": "west", "甘肃": "west"}
WEST = {"north", "west"}  # 东数西算 hubs with cheaper power and land

# Chips for centers whose source names none (or names no catalog SKU). All ASSUMPTION.
CHIP_CHOICE = {
    "pengcheng-cloudbrain-2": ("Ascend 910A", "source says 'Ascend 910'; mapped to the 910A catalog row"),
    "nanjing-icc": ("MLU370-X8", "vendor not in the sources read; a domestic Cambricon pool for variety"),
    "hefei-acc": ("DCU Shensuan-1 (深算一号)", "vendor not in the sources read; a Hygon DCU pool for variety"),
    "baidu-yangquan": ("A800 SXM4 80GB", "vendor not in the sources read"),
    "sensetime-lingang-aidc": ("A800 SXM4 80GB", "vendor not in the sources read"),
    "chengdu-icc": ("Ascend 910B (generic)", "vendor not in the sources read"),
    "qingyang-cluster": ("Ascend 910B (generic)", "source says 'domestic accelerators (unnamed)'"),
}
CHENGDU_PFLOPS = 300.0  # source gives no scale for Chengdu

# Prices: the only mainland figure found is "A100/A800 8-12 CNY per GPU-hour" (2023, low confidence).
A100_PRICE = 10.0
A100_TFLOPS = 312.0
WEST_DISCOUNT = 0.8


def price_for(tflops: float, region: str) -> float:
    base = A100_PRICE * tflops / A100_TFLOPS
    return round(base * (WEST_DISCOUNT if region in WEST else 1.0), 2)


def _scale(c: dict) -> float | None:  # type: ignore[type-arg]
    v = c["scale_pflops_fp16"]["value"]
    if isinstance(v, str):
        v = v.lstrip("><~ ")
    return float(v) if v not in (None, "") else None


def center_yaml(c: dict) -> dict:  # type: ignore[type-arg]
    catalog = load_catalog()
    region = REGION[c["province"]]
    assumptions = {"region": "province -> region is a geographic convention"}
    if c["pue"]["basis"] != "source":
        assumptions["pue"] = c["pue"].get("why", "ASSUMPTION in example_network.json")
    grid = c["grid"]["provincial_2022_kgCO2_per_kWh"]
    accs = c["accelerators"]["value"]
    scale = _scale(c)
    pool_assumptions = {}
    if c["id"] in CHIP_CHOICE:
        chip_name, why = CHIP_CHOICE[c["id"]]
        chip = catalog.lookup(chip_name)
        pool_assumptions["accelerator"] = why
        count = None
        if accs and "count" in accs[0]:
            count = int(accs[0]["count"])
        if count is None:
            if scale is None:
                scale = CHENGDU_PFLOPS
                pool_assumptions["nodes"] = f"no scale in the source; {CHENGDU_PFLOPS:.0f} P assumed"
            else:
                pool_assumptions["nodes"] = f"devices = {scale:.0f} P / {chip.fp16_tflops} TFLOPS per chip"
            count = math.ceil(scale * 1000 / chip.fp16_tflops)
    else:
        chip = catalog.lookup(accs[0]["accelerator"])
        count = int(accs[0]["count"])
        if c["accelerators"]["basis"] != "source":
            pool_assumptions["accelerator"] = c["accelerators"]["why"]
            pool_assumptions["nodes"] = c["accelerators"]["why"]
    pool_assumptions["price_per_device_hour"] = (
        f"{A100_PRICE} CNY/h for an A100 (midpoint of a low-confidence 8-12 CNY range), scaled by FP16 TFLOPS"
        + (f", x{WEST_DISCOUNT} in western/northern hubs" if region in WEST else "")
    )
    pool_assumptions["devices_per_node"] = "8 devices per node assumed"
    nodes = math.ceil(count / 8)
    return {
        "name": c["id"], "name_zh": c["name_zh"], "region": region, "province": c["province"],
        "engine": "local", "pue": float(c["pue"]["value"]), "carbon_kg_per_kwh": float(grid["value"]),
        "tou_zone": c["tou_zone"], "assumptions": assumptions,
        "pools": [{
            "name": "main", "accelerator": chip.name, "nodes": nodes, "devices_per_node": 8,
            "price_per_device_hour": price_for(chip.fp16_tflops, region), "assumptions": pool_assumptions,
        }],
    }


def build() -> str:
    src = json.loads(resources.files("zhisuan.catalog").joinpath("data", "example_network.json").read_text())
    network = {
        "name": "cn10",
        "description": ("Ten Chinese AI computing centers from shared/data/network/example_network.json. "
                        "Values under `assumptions` are ASSUMPTION, not sourced facts."),
        "centers": [center_yaml(c) for c in src["centers"]],
        "tenants": [{"name": "acme", "weight": 2.0}, {"name": "lab", "weight": 1.0, "quota_devices": 4096}],
    }
    header = "# Generated by tools/build_cn10.py from zhisuan/catalog/data/example_network.json; do not edit.\n"
    return header + yaml.safe_dump(network, allow_unicode=True, sort_keys=False, width=120)


if __name__ == "__main__":
    text = build()
    if "--check" in sys.argv:
        sys.exit(0 if OUT.read_text(encoding="utf-8") == text else "cn10.yaml is stale: run tools/build_cn10.py")
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
