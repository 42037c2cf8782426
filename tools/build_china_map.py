"""Build src/zhisuan/web/static/china-provinces.json — the dashboard's map of China — from the province
geometry Apache ECharts 4.9.0 ships (`map/json/china.json`, Apache-2.0; fetched with `npm pack
echarts@4.9.0`). ECharts stores it delta-encoded in characters ("UTF8Encoding"); this decodes it to plain
GeoJSON, rounds coordinates to 0.01° and drops points closer than `--tolerance` degrees to the last kept
one (the dashboard draws a 600-pixel map). Run: python tools/build_china_map.py PATH/TO/china.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "zhisuan" / "web" / "static" / "china-provinces.json"


def decode_ring(text: str, offsets: list[int], scale: float = 1024.0) -> list[list[float]]:
    """ECharts' encoding: each point is two characters, zigzag-coded deltas from the previous point."""
    x0, y0 = offsets
    out = []
    for i in range(0, len(text) - 1, 2):
        dx, dy = ord(text[i]) - 64, ord(text[i + 1]) - 64
        dx, dy = (dx >> 1) ^ -(dx & 1), (dy >> 1) ^ -(dy & 1)
        x0, y0 = x0 + dx, y0 + dy
        out.append([x0 / scale, y0 / scale])
    return out


def thin(ring: list[list[float]], tolerance: float) -> list[list[float]]:
    kept = [ring[0]]
    for p in ring[1:]:
        if abs(p[0] - kept[-1][0]) + abs(p[1] - kept[-1][1]) >= tolerance:
            kept.append(p)
    if kept[-1] != ring[-1]:
        kept.append(ring[-1])
    return [[round(x, 2), round(y, 2)] for x, y in kept]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("source", type=Path)
    ap.add_argument("--tolerance", type=float, default=0.08)
    args = ap.parse_args()
    src = json.loads(args.source.read_text(encoding="utf-8"))
    features = []
    for f in src["features"]:
        g = f["geometry"]
        polys = g["coordinates"] if g["type"] == "MultiPolygon" else [g["coordinates"]]
        offsets = g["encodeOffsets"] if g["type"] == "MultiPolygon" else [g["encodeOffsets"]]
        out = []
        for poly, offs in zip(polys, offsets, strict=True):
            rings = [thin(decode_ring(r, o), args.tolerance) for r, o in zip(poly, offs, strict=True)]
            rings = [r for r in rings if len(r) >= 4]
            if rings:
                out.append(rings)
        features.append({"type": "Feature", "properties": {"name": f["properties"]["name"],
                                                            "adcode": f["properties"]["id"]},
                         "geometry": {"type": "MultiPolygon", "coordinates": out}})
    OUT.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False,
                              separators=(",", ":")), encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes, {len(features)} provinces)")


if __name__ == "__main__":
    main()
