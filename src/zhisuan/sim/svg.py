"""Minimal inline-SVG line charts for the HTML report (two chart kinds; no plotting dependency)."""

from __future__ import annotations

import math
from html import escape

import numpy as np

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]
W, H, L, B, T, R = 640, 320, 60, 40, 20, 160


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    """Decades on a log axis; otherwise about five round steps (1, 2 or 5 x 10^k)."""
    if log:
        return [10.0**e for e in range(math.floor(lo), math.ceil(hi) + 1)]
    raw = (hi - lo) / 5 or 1.0
    mag = 10.0 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def line_chart(series: list[tuple[str, np.ndarray, np.ndarray]], x_label: str, y_label: str,
               log_x: bool = False, title: str = "") -> str:
    xs_all = np.concatenate([s[1] for s in series]) if series else np.zeros(1)
    ys_all = np.concatenate([s[2] for s in series]) if series else np.zeros(1)
    def fx(v: np.ndarray) -> np.ndarray:
        return np.log10(np.maximum(v, 1e-3)) if log_x else v

    x_lo, x_hi = float(fx(xs_all).min()), float(fx(xs_all).max())
    y_lo, y_hi = 0.0, max(float(ys_all.max()), 1e-9)
    x_hi = x_hi if x_hi > x_lo else x_lo + 1
    sx = (W - L - R) / (x_hi - x_lo)
    sy = (H - T - B) / (y_hi - y_lo)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" '
           f'font-size="11"><title>{escape(title)}</title>',
           f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#999"/>']
    for tv in _ticks(x_lo, x_hi, log_x):
        v = math.log10(tv) if log_x else tv
        if x_lo <= v <= x_hi:
            x = L + (v - x_lo) * sx
            out.append(f'<text x="{x:.1f}" y="{H - B + 14}" text-anchor="middle">{tv:g}</text>')
    for tv in _ticks(y_lo, y_hi, False):
        y = H - B - (tv - y_lo) * sy
        out.append(f'<text x="{L - 4}" y="{y + 4:.1f}" text-anchor="end">{tv:.2g}</text>')
    out.append(f'<text x="{(W - R + L) / 2}" y="{H - 6}" text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text x="12" y="{(H - B + T) / 2}" transform="rotate(-90 12 {(H - B + T) / 2})" '
               f'text-anchor="middle">{escape(y_label)}</text>')
    for i, (name, xs, ys) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        pts = " ".join(f"{L + (float(x) - x_lo) * sx:.1f},{H - B - (float(y) - y_lo) * sy:.1f}"
                       for x, y in zip(fx(xs), ys, strict=True))
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{pts}"/>')
        out.append(f'<text x="{W - R + 8}" y="{T + 14 * (i + 1)}" fill="{color}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)
