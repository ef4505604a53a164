// Inline SVG charts: step curves with a band, stacked bars by horizon, and the icon array of 100 patients.
// Text sits in a narrow viewBox at 13 units so that it stays readable when the chart shrinks to a phone's width
// or a printed column; legends are HTML beside the chart (they wrap instead of being cut off).
"use strict";

const NS = "http://www.w3.org/2000/svg";
const INK = "#1d2430";
const GRID = "#e3e6ea";

export const FREE_COLOR = "#0072B2";
// Okabe–Ito colours (distinguishable with colour-blindness), one per relapse pattern in the model's order
const PATTERN_COLORS = ["#D55E00", "#E69F00", "#CC79A7", "#009E73", "#56B4E9"];
const DEATH_COLOR = "#6b6b6b";

export function outcomeColor(outcome, causes) {
  if (outcome === "free") return FREE_COLOR;
  if (outcome === "death" || outcome === "progressed") return outcome === "death" ? DEATH_COLOR : PATTERN_COLORS[0];
  const k = causes.indexOf(outcome);
  return PATTERN_COLORS[(k < 0 ? 0 : k) % PATTERN_COLORS.length];
}

export function svg(tag, attrs, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function root(width, height, label) {
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label,
                      preserveAspectRatio: "xMidYMid meet" });
}

// round month ticks: the smallest step of 1, 2, 3, 6, 12 ... giving at most 7 ticks
function tickStep(span) {
  for (const step of [0.5, 1, 2, 3, 6, 12, 24, 48]) if (span / step <= 7) return step;
  return Math.ceil(span / 7);
}

// a step function as points from its start, held to the end of the axis
function stepPoints(times, values, start, end) {
  const points = [[start.t, start.v]];
  let last = start.v;
  times.forEach((t, i) => {
    if (values[i] === null) return;
    points.push([t, last], [t, values[i]]);
    last = values[i];
  });
  points.push([end, last]);
  return points;
}

// series: [{times, values, lower?, upper?, color, dash?, cls, start: {t, v}}]; x from xMin to xMax
export function curveChart(series, opts) {
  const W = 440, H = 270, L = 44, R = 10, T = 10, B = 44;
  const x = (t) => L + ((Math.min(t, opts.xMax) - opts.xMin) / (opts.xMax - opts.xMin)) * (W - L - R);
  const y = (s) => T + (1 - s) * (H - T - B);
  const path = (points) => "M" + points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" L");
  const chart = root(W, H, opts.label);
  for (let k = 0; k <= 4; k++) {
    chart.appendChild(svg("line", { x1: L, x2: W - R, y1: y(k / 4), y2: y(k / 4), stroke: GRID }));
    chart.appendChild(svg("text", { x: L - 5, y: y(k / 4) + 4, "text-anchor": "end", "font-size": 13, fill: INK },
                          `${k * 25}%`));
  }
  const step = tickStep(opts.xMax - opts.xMin);
  for (let t = Math.ceil(opts.xMin / step) * step; t <= opts.xMax + 1e-9; t += step) {
    chart.appendChild(svg("text", { x: x(t), y: H - B + 17, "text-anchor": "middle", "font-size": 13, fill: INK },
                          String(t)));
  }
  chart.appendChild(svg("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", "font-size": 13, fill: INK },
                        opts.xTitle));
  for (const mark of opts.marks || []) {
    chart.appendChild(svg("line", { x1: x(mark), x2: x(mark), y1: T, y2: H - B, stroke: "#9aa1ab",
                                    "stroke-dasharray": "2 3", class: "horizon-mark" }));
  }
  for (const s of series) {
    const inside = s.times.map((t, i) => [t, i]).filter(([t]) => t <= opts.xMax);
    const times = inside.map(([t]) => t);
    const pick = (values) => inside.map(([, i]) => values[i]);
    if (s.lower && s.upper) {
      const upper = stepPoints(times, pick(s.upper), s.start, opts.xMax);
      const lower = stepPoints(times, pick(s.lower), s.start, opts.xMax).reverse();
      chart.appendChild(svg("path", { d: `${path([...upper, ...lower])} Z`, fill: s.color, opacity: "0.22",
                                      stroke: "none", class: `band ${s.cls}-band` }));
    }
    chart.appendChild(svg("path", { d: path(stepPoints(times, pick(s.values), s.start, opts.xMax)), fill: "none",
                                    stroke: s.color, "stroke-width": s.width || 2.4, "stroke-dasharray": s.dash || "",
                                    class: s.cls }));
  }
  chart.appendChild(svg("line", { x1: L, x2: L, y1: T, y2: H - B, stroke: "#333" }));
  chart.appendChild(svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#333" }));
  return chart;
}

// rows: [{label, parts: [{outcome, value}]}]: one 100 % bar per horizon, parts stacked from the left
export function stackedBars(rows, causes, label) {
  const W = 440, rowH = 30, L = 84, R = 22, T = 6;
  const H = T + rows.length * rowH + 26;
  const x = (v) => L + v * (W - L - R);
  const chart = root(W, H, label);
  rows.forEach((row, k) => {
    const top = T + k * rowH;
    chart.appendChild(svg("text", { x: L - 6, y: top + rowH / 2 + 4, "text-anchor": "end", "font-size": 13, fill: INK },
                          row.label));
    let start = 0;
    for (const part of row.parts) {
      const width = Math.max(0, part.value);
      chart.appendChild(svg("rect", { x: x(start), y: top + 4, width: Math.max(0, x(start + width) - x(start)),
                                      height: rowH - 8, fill: outcomeColor(part.outcome, causes),
                                      class: "bar", "data-outcome": part.outcome }));
      start += width;
    }
  });
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    chart.appendChild(svg("text", { x: x(v), y: H - 8, "text-anchor": "middle", "font-size": 13, fill: INK },
                          `${v * 100}%`));
  }
  return chart;
}

// 100 squares, ten to a row, filled in the order of `parts` ({outcome, label, count}; counts add up to 100)
export function iconArray(parts, causes) {
  const size = 22, gap = 4;
  const W = 10 * (size + gap) - gap;
  const words = parts.map((p) => `${p.count} ${p.label}`).join(", ");
  const chart = root(W, W, `Icon array of 100 patients like this: ${words}`);
  let k = 0;
  for (const part of parts) {
    for (let j = 0; j < part.count; j++, k++) {
      const col = k % 10, row = Math.floor(k / 10);
      chart.appendChild(svg("rect", { x: col * (size + gap), y: row * (size + gap), width: size, height: size, rx: 4,
                                      fill: outcomeColor(part.outcome, causes), class: "icon",
                                      "data-outcome": part.outcome }));
    }
  }
  return chart;
}

// an HTML legend: [{color, label, dash?}]
export function legend(items) {
  const list = document.createElement("ul");
  list.className = "legend";
  for (const item of items) {
    const li = document.createElement("li");
    const key = document.createElement("span");
    key.className = item.dash ? "key dashed" : item.area ? "key area" : "key";
    key.style.setProperty("--key", item.color);
    key.setAttribute("aria-hidden", "true");
    li.append(key, document.createTextNode(item.label));
    list.appendChild(li);
  }
  return list;
}
