// The schematic map of China's centers (inline SVG) and time charts (uPlot, vendored).
const PROVINCES = {  // capital (lon, lat) of each province, for a schematic placement
  "北京": [116.4, 39.9], "天津": [117.2, 39.1], "河北": [114.5, 38.0], "山西": [112.5, 37.9], "内蒙古": [111.7, 40.8],
  "辽宁": [123.4, 41.8], "吉林": [125.3, 43.9], "黑龙江": [126.6, 45.8], "上海": [121.5, 31.2], "江苏": [118.8, 32.1],
  "浙江": [120.2, 30.3], "安徽": [117.3, 31.9], "福建": [119.3, 26.1], "江西": [115.9, 28.7], "山东": [117.0, 36.7],
  "河南": [113.7, 34.8], "湖北": [114.3, 30.6], "湖南": [113.0, 28.2], "广东": [113.3, 23.1], "广西": [108.3, 22.8],
  "海南": [110.3, 20.0], "重庆": [106.5, 29.6], "四川": [104.1, 30.7], "贵州": [106.7, 26.6], "云南": [102.7, 25.0],
  "西藏": [91.1, 29.6], "陕西": [108.9, 34.3], "甘肃": [107.6, 35.7], "青海": [101.8, 36.6], "宁夏": [106.3, 38.5],
  "新疆": [87.6, 43.8],
};
const REGIONS = { north: [114, 41], east: [119, 31], south: [113, 23], west: [104, 34], central: [113, 30] };
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function mapSvg(centers) {
  const W = 520, H = 360, x = (lon) => ((lon - 73) / 62) * W, y = (lat) => H - ((lat - 17) / 37) * H;
  const out = [`<svg id="map" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img">`,
    `<rect x="2" y="2" width="${W - 4}" height="${H - 4}" rx="24" fill="#eaf1f8" stroke="#9fb6cc"/>`];
  for (const [name, [lon, lat]] of Object.entries(REGIONS)) {
    out.push(`<text x="${x(lon) - 20}" y="${y(lat) + 30}" fill="#8aa0b6">${esc(name)}</text>`);
  }
  centers.forEach((c, i) => {
    const [lon, lat] = PROVINCES[c.province] || REGIONS[c.region] || [105, 35];
    const jitter = (i % 3) * 9;
    const color = c.healthy ? "#0969da" : "#cf222e";
    const r = 5 + Math.min(12, Math.sqrt(c.pflops));
    out.push(`<circle cx="${x(lon) + jitter}" cy="${y(lat) - jitter}" r="${r}" fill="${color}" fill-opacity="0.6">` +
      `<title>${esc(c.name)}</title></circle>`);
    const label = LANG === "zh-CN" && c.name_zh ? c.name_zh : c.name;
    out.push(`<text x="${x(lon) + jitter + r + 2}" y="${y(lat) - jitter + 4}">${esc(label)}</text>`);
  });
  out.push("</svg>");
  return out.join("");
}

// Time series with uPlot (vendor/uplot): x in epoch seconds shown in the network's time zone, y in %.
function timeChart(el, title, xs, series, yLabel = "%") {
  const opts = {
    title, width: 540, height: 240,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), TZ),
    scales: { x: { time: true }, y: { range: [0, 100] } },
    axes: [{ label: t("util.time", { tz: TZ }) }, { label: yLabel }],
    series: [{}, ...series.map(([name], k) => ({ label: name, stroke: COLORS[k % COLORS.length], width: 1.6,
      value: (u, v) => (v == null ? "–" : num(v, 1)) }))],
  };
  return new uPlot(opts, [xs, ...series.map(([, values]) => values)], el);
}

