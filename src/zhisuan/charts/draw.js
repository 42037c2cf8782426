// Draws the charts a report lists in window.ZHISUAN_CHARTS with uPlot (vendored next to this file).
// Each: {id, title, x_label, y_label, x: [...], series: [{label, values}], log_x, time, tz, y_max, points}.
(function () {
  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"];
  const fmt = (v) => (v == null ? "–" : Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));
  for (const c of window.ZHISUAN_CHARTS || []) {
    const el = document.getElementById(c.id);
    if (!el) continue;
    const opts = {
      title: c.title, width: 640, height: 300,
      scales: { x: c.time ? { time: true } : { time: false, distr: c.log_x ? 3 : 1 },
                y: { range: (u, lo, hi) => [0, Math.max(c.y_max || 0, hi || 0) || 1] } },
      axes: [{ label: c.x_label }, { label: c.y_label, size: 60 }],
      series: [{ label: c.x_label }, ...c.series.map((s, k) => ({
        label: s.label, stroke: COLORS[k % COLORS.length], width: 1.6, value: (u, v) => fmt(v),
        ...(c.points ? { paths: () => null, points: { show: true, size: 9, fill: COLORS[k % COLORS.length] } } : {}) }))],
    };
    if (c.time && c.tz) opts.tzDate = (ts) => uPlot.tzDate(new Date(ts * 1e3), c.tz);
    new uPlot(opts, [c.x, ...c.series.map((s) => s.values)], el);
  }
})();
