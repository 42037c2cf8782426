"""Derive src/zhisuan/sim/data/sia_speed.csv from the Sia measured step times (shared/traces).

Throughput of one GPU = local_bsz / step_time at placement "1"; per application, the A100/V100 ratio
is the median over the local batch sizes both GPU types were measured at. Run:
    python tools/build_speed_table.py ../shared/traces/sia_throughput_profiles/sia_throughput_profiles.tar.gz
"""

from __future__ import annotations

import csv
import io
import statistics
import sys
import tarfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src/zhisuan/sim/data/sia_speed.csv"
GPUS = {"azure": "V100 SXM2 32GB", "dgx": "A100 SXM4 40GB"}  # Sia's simulator_config: ND40rs_v2, DGX-A100
APPS = ["bert", "cifar10", "deepspeech2", "imagenet", "ncf", "yolov3"]


def single_gpu_throughput(tar: tarfile.TarFile, app: str, gpu: str) -> dict[int, float]:
    member = tar.extractfile(f"./{app}/placements-{gpu}.csv")
    assert member is not None
    rows = csv.DictReader(io.TextIOWrapper(member, encoding="utf-8"))
    return {int(r["local_bsz"]): int(r["local_bsz"]) / float(r["step_time"]) for r in rows if r["placement"] == "1"}


def build(tarball: str) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["application", "accelerator", "speed_vs_v100", "batch_sizes_compared"])
    with tarfile.open(tarball) as tar:
        for app in APPS:
            v100 = single_gpu_throughput(tar, app, "azure")
            a100 = single_gpu_throughput(tar, app, "dgx")
            common = sorted(set(v100) & set(a100))
            ratio = statistics.median(a100[b] / v100[b] for b in common)
            w.writerow([app, GPUS["azure"], 1.0, len(common)])
            w.writerow([app, GPUS["dgx"], round(ratio, 4), len(common)])
    return out.getvalue()


if __name__ == "__main__":
    OUT.write_text(build(sys.argv[1]), encoding="utf-8")
    print(OUT.read_text())
