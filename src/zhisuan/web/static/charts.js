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

let PROVINCE_SHAPES = null;  // china-provinces.json (ECharts' outlines, Apache-2.0; see web/README.md)

async function loadProvinces() {
  if (!PROVINCE_SHAPES) PROVINCE_SHAPES = await (await fetch("china-provinces.json")).json();
  return PROVINCE_SHAPES;
}

// A real map of China: province outlines, each center a circle sized by its P and coloured by occupancy
// (red outline: down), flows of running jobs from where their data is to where they run.
function mapSvg(shapes, centers, flows) {
  const W = 600, H = 470, lon0 = 73, lat1 = 54, k = 9.6, c35 = Math.cos((35 * Math.PI) / 180);
  const px = (lon) => (lon - lon0) * k * c35 * 1.2, py = (lat) => (lat1 - lat) * k * 1.25;
  const out = [`<svg id="map" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img">`];
  for (const f of shapes.features) {
    const d = f.geometry.coordinates.map((poly) => poly.map((ring) =>
      "M" + ring.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join("L") + "Z").join("")).join("");
    out.push(`<path class="province" d="${d}"><title>${esc(f.properties.name)}</title></path>`);
  }
  const where = {};
  centers.forEach((c, i) => {
    const [lon, lat] = PROVINCES[c.province] || REGIONS[c.region] || [105, 35];
    where[c.name] = [px(lon) + (i % 3) * 6, py(lat) - (i % 3) * 6];
  });
  for (const f of flows) {
    const [a, b] = [where[f.from], where[f.to]];
    if (!a || !b) continue;
    const mx = (a[0] + b[0]) / 2, my = Math.min(a[1], b[1]) - 40;
    out.push(`<path class="flow" d="M${a[0]},${a[1]} Q${mx},${my} ${b[0]},${b[1]}" stroke-width="${1 + Math.min(6, f.jobs)}">` +
      `<title>${esc(t("map.flow", { from: f.from, to: f.to, jobs: f.jobs }))}</title></path>`);
  }
  for (const c of centers) {
    const [x, y] = where[c.name];
    const r = 5 + Math.min(16, 2 * Math.sqrt(c.pflops));
    const occ = c.occupancy_pct;
    const fill = occ >= 85 ? "#cf222e" : occ >= 50 ? "#d4a72c" : "#2da44e";
    const label = LANG === "zh-CN" && c.name_zh ? c.name_zh : c.name;
    out.push(`<circle class="center ${c.healthy ? "up" : "down"}" data-center="${esc(c.name)}" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" ` +
      `r="${r.toFixed(1)}" fill="${fill}" fill-opacity="0.75"><title>${esc(t("map.center", { name: label,
        pflops: num(c.pflops, 1), occ: num(occ, 0), queue: num(c.queue) }))}</title></circle>`);
    out.push(`<text x="${(x + r + 3).toFixed(1)}" y="${(y + 4).toFixed(1)}">${esc(label)}</text>`);
  }
  out.push("</svg>");
  return out.join("");
}

// Time series with uPlot (vendor/uplot): x in epoch seconds shown in the network's time zone, y in %.
function timeChart(el, title, xs, series, yLabel = "%") {
  const opts = {
    title, width: 540, height: 240,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), TZ),
    scales: { x: { time: true }, y: { range: [0, 100] } },
    axes: [{ label: t("util.time", { tz: TZ }), size: 56, values: (u, splits) => splits.map((ts) => new Intl.DateTimeFormat(LANG,
      { month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", timeZone: TZ }).format(new Date(ts * 1000))) },
    { label: yLabel }],
    series: [{ label: t("col.time") }, ...series.map(([name], k) => ({ label: name, stroke: COLORS[k % COLORS.length], width: 1.6,
      value: (u, v) => (v == null ? "–" : num(v, 1)) }))],
  };
  return new uPlot(opts, [xs, ...series.map(([, values]) => values)], el);
}

