// cnslrisk web page: the form comes from GET v1/model (fields, units, allowed values from the data
// dictionary), the prediction from POST v1/predict?curve=true. Plain JS, inline SVG, no outside resources.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#c0392b", "#1f77b4", "#e67e22", "#7f3c8d", "#2a9d8f", "#8c564b"];
let modelInfo = null;

const $ = (id) => document.getElementById(id);
const pct = (v) => (v === null || v === undefined ? "n/a" : (v * 100).toFixed(1) + " %");
const num = (v, d) => (v === null || v === undefined ? "n/a" : Number(v).toFixed(d));
const hLabel = (h) => String(Number(h)); // 6 -> "6", 0.5 -> "0.5", as the API's column names

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function headers(json) {
  const h = json ? { "Content-Type": "application/json" } : {};
  const token = $("api-token").value || sessionStorage.getItem("cnslrisk-token");
  if (token) h.Authorization = "Bearer " + token;
  return h;
}

async function call(path, options) {
  const response = await fetch(path, options);
  if (response.status === 401) {
    $("token-row").hidden = false;
  }
  const body = await response.json().catch(() => ({ detail: [{ loc: [], msg: "unreadable response" }] }));
  return { ok: response.ok, status: response.status, body };
}

function fieldInput(spec) {
  const id = "f-" + spec.name;
  let input;
  if (spec.type === "boolean" || spec.type === "category") {
    input = el("select", { id, name: spec.name });
    const options = spec.type === "boolean" ? [["false", "no"], ["true", "yes"]] : spec.levels.map((l) => [l, l]);
    if (!spec.required) options.unshift(["", "not known"]); // an optional field may be left out
    for (const [value, label] of options) input.appendChild(el("option", { value }, label));
    input.value = spec.default === null ? "" : String(spec.default);
  } else if (spec.type === "number" || spec.type === "integer") {
    input = el("input", { id, name: spec.name, type: "number", step: spec.type === "integer" ? "1" : "any" });
    if (spec.min !== null) input.min = spec.min;
    if (spec.max !== null) input.max = spec.max;
    if (spec.default !== null) input.value = spec.default;
  } else {
    input = el("input", { id, name: spec.name, type: "text", autocomplete: "off" });
  }
  input.required = spec.required;
  return input;
}

function buildForm(inputs) {
  const box = $("fields");
  box.replaceChildren();
  for (const spec of inputs) {
    const wrap = el("div", { class: "field", id: "w-" + spec.name });
    const label = el("label", { for: "f-" + spec.name }, spec.name + " ");
    if (spec.unit) label.appendChild(el("span", { class: "unit" }, "(" + spec.unit + ")"));
    wrap.appendChild(label);
    wrap.appendChild(fieldInput(spec));
    const help = spec.description + (spec.required ? "" : " (optional)") + ". Allowed: " + spec.expected;
    wrap.appendChild(el("p", { class: "help" }, help));
    box.appendChild(wrap);
  }
}

function readPatient() {
  const patient = {};
  for (const spec of modelInfo.inputs) {
    const raw = $("f-" + spec.name).value.trim();
    if (raw === "") {
      if (spec.required) patient[spec.name] = null;
      continue;
    }
    if (spec.type === "boolean") patient[spec.name] = raw === "true";
    else if (spec.type === "number" || spec.type === "integer") patient[spec.name] = Number(raw);
    else patient[spec.name] = raw;
  }
  return patient;
}

function showErrors(detail) {
  const list = $("form-errors");
  list.replaceChildren();
  document.querySelectorAll(".field.invalid").forEach((n) => n.classList.remove("invalid"));
  for (const item of detail || []) {
    list.appendChild(el("li", {}, item.msg));
    const name = (item.loc || []).filter((p) => typeof p === "string" && p !== "body").pop();
    if (name && $("w-" + name)) $("w-" + name).classList.add("invalid");
  }
}

function showModel(info) {
  const p = info.provenance;
  $("model-line").textContent = `model ${info.name} version ${info.version}` + (info.alias ? ` (alias ${info.alias})` : "") +
    `, ${p.model_type}; trained on a ${p.training_source} cohort (n = ${p.training_n}, ${p.training_events} events)`;
  showNotice(p);
}

function showNotice(p) {
  const box = $("notice");
  box.hidden = !p.not_for_clinical_use;
  box.textContent = p.not_for_clinical_use ? p.notice : "";
}

// --- charts -------------------------------------------------------------------------------------------
function stepPath(times, values, x, y) {
  let d = `M${x(0)},${y(1)}`;
  let last = 1;
  times.forEach((t, i) => {
    d += ` L${x(t)},${y(last)} L${x(t)},${y(values[i])}`;
    last = values[i];
  });
  return { d, last };
}

function drawCurve(curve, km, horizons, unit) {
  const W = 520, H = 300, L = 46, R = 12, T = 12, B = 40;
  const tMax = Math.max(horizons[horizons.length - 1] * 1.5, ...curve.time.slice(-1), 1);
  const end = Math.min(tMax, Math.max(...km.time, ...curve.time));
  const x = (t) => L + (Math.min(t, end) / end) * (W - L - R);
  const y = (s) => T + (1 - s) * (H - T - B);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "CNS-PFS1 curve" });
  for (let k = 0; k <= 4; k++) {
    const s = k / 4;
    root.appendChild(svg("line", { x1: L, x2: W - R, y1: y(s), y2: y(s), stroke: "#e3e6ea" }));
    root.appendChild(svg("text", { x: L - 6, y: y(s) + 4, "text-anchor": "end" }, Math.round(s * 100) + "%"));
  }
  const ticks = 6;
  for (let k = 0; k <= ticks; k++) {
    const t = (end * k) / ticks;
    root.appendChild(svg("text", { x: x(t), y: H - B + 16, "text-anchor": "middle" }, t.toFixed(t < 10 ? 1 : 0)));
  }
  root.appendChild(svg("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle" }, `${unit} from infusion`));
  const inside = curve.time.map((t, i) => [t, i]).filter(([t]) => t <= end);
  if (curve.lower && curve.upper) {
    const up = stepPath(inside.map(([t]) => t), inside.map(([, i]) => curve.upper[i]), x, y);
    let lowPts = [];
    let last = 1;
    inside.forEach(([t, i]) => { lowPts.push([x(t), y(last)], [x(t), y(curve.lower[i])]); last = curve.lower[i]; });
    lowPts.unshift([x(0), y(1)]);
    lowPts.push([x(end), y(last)]);
    const back = lowPts.reverse().map(([a, b]) => `L${a},${b}`).join(" ");
    root.appendChild(svg("path", { d: `${up.d} L${x(end)},${y(up.last)} ${back} Z`, fill: "#9cc0ea", opacity: "0.55",
                                   stroke: "none", class: "band" }));
  }
  const kmIn = km.time.map((t, i) => [t, km.survival[i]]).filter(([t]) => t <= end);
  const kmPath = stepPath(kmIn.map((p) => p[0]), kmIn.map((p) => p[1]), x, y);
  root.appendChild(svg("path", { d: `${kmPath.d} L${x(end)},${y(kmPath.last)}`, fill: "none", stroke: "#6b6b6b",
                                 "stroke-width": 1.6, "stroke-dasharray": "5 4", class: "km" }));
  const main = stepPath(inside.map(([t]) => t), inside.map(([, i]) => curve.survival[i]), x, y);
  root.appendChild(svg("path", { d: `${main.d} L${x(end)},${y(main.last)}`, fill: "none", stroke: "#1f5fa8",
                                 "stroke-width": 2.4, class: "patient" }));
  for (const h of horizons) {
    root.appendChild(svg("line", { x1: x(h), x2: x(h), y1: T, y2: H - B, stroke: "#b0b6bf", "stroke-dasharray": "2 3" }));
  }
  root.appendChild(svg("line", { x1: L, x2: L, y1: T, y2: H - B, stroke: "#333" }));
  root.appendChild(svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#333" }));
  const legend = [["#1f5fa8", "this patient", ""], ["#9cc0ea", "95 % band", ""], ["#6b6b6b", "training cohort (KM)", "5 4"]];
  root.appendChild(svg("rect", { x: W - R - 156, y: T, width: 152, height: 52, fill: "#fff", opacity: "0.85" }));
  legend.forEach(([c, label, dash], k) => {
    const ly = T + 10 + k * 16;
    root.appendChild(svg("line", { x1: W - R - 150, x2: W - R - 128, y1: ly, y2: ly, stroke: c, "stroke-width": 4,
                                   "stroke-dasharray": dash }));
    root.appendChild(svg("text", { x: W - R - 122, y: ly + 4 }, label));
  });
  $("curve-chart").replaceChildren(root);
}

function drawBars(target, rows, opts) {
  // rows: [{label, parts: [{name, value, color}]}]; stacked horizontal bars on [0, max]
  const W = 520, rowH = 26, L = opts.left || 70, R = 60, T = 8;
  const H = T + rows.length * rowH + 40;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.label });
  const lo = opts.min === undefined ? 0 : opts.min, hi = opts.max;
  const x = (v) => L + ((v - lo) / (hi - lo)) * (W - L - R);
  rows.forEach((row, k) => {
    const yTop = T + k * rowH;
    root.appendChild(svg("text", { x: L - 6, y: yTop + rowH / 2 + 4, "text-anchor": "end" }, row.label));
    let start = opts.diverging ? 0 : lo;
    for (const part of row.parts) {
      const a = opts.diverging ? Math.min(0, part.value) : start;
      const b = opts.diverging ? Math.max(0, part.value) : start + part.value;
      root.appendChild(svg("rect", { x: x(a), y: yTop + 4, width: Math.max(0.5, x(b) - x(a)), height: rowH - 8,
                                     fill: part.color }));
      start = b;
    }
    if (row.note) root.appendChild(svg("text", { x: W - R + 4, y: yTop + rowH / 2 + 4 }, row.note));
  });
  if (opts.diverging) root.appendChild(svg("line", { x1: x(0), x2: x(0), y1: T, y2: T + rows.length * rowH, stroke: "#333" }));
  const yAxis = T + rows.length * rowH + 14;
  for (const v of opts.ticks) {
    root.appendChild(svg("text", { x: x(v), y: yAxis, "text-anchor": "middle" }, opts.tickLabel(v)));
  }
  (opts.legend || []).forEach(([c, label], k) => {
    const lx = L + k * 120;
    root.appendChild(svg("rect", { x: lx, y: yAxis + 8, width: 12, height: 12, fill: c }));
    root.appendChild(svg("text", { x: lx + 16, y: yAxis + 18 }, label));
  });
  $(target).replaceChildren(root);
}

// --- results ------------------------------------------------------------------------------------------
function cell(row, text, attrs) { row.appendChild(el("td", attrs || {}, text)); }

function render(result, patient) {
  const row = result.predictions[0];
  const unit = result.provenance.time_unit;
  showNotice(result.provenance);
  $("results").hidden = false;
  $("print").hidden = false;
  $("patient-label").textContent = row.patient_id ? "for " + row.patient_id : "";
  $("entered").textContent = "Entered: " + Object.entries(patient).map(([k, v]) => `${k} ${v}`).join(", ");
  $("median").textContent = row.median_time === null ? "not reached" : `${num(row.median_time, 2)} ${unit}`;
  $("median").dataset.value = row.median_time;
  $("risk-group").textContent = row.risk_group;
  $("risk-score").textContent = num(row.risk_score, 3);
  $("risk-score").dataset.value = row.risk_score;
  const warnings = $("warnings");
  warnings.replaceChildren(...(row.warnings.length ? row.warnings : ["no applicability warnings"]).map(
    (w) => el("li", { class: row.warnings.length ? "warning" : "none" }, w)));

  const tbody = $("survival-table").querySelector("tbody");
  tbody.replaceChildren();
  for (const h of result.horizons) {
    const key = "survival_" + hLabel(h);
    const tr = el("tr");
    cell(tr, `${hLabel(h)} ${unit}`);
    cell(tr, pct(row[key]), { id: "surv-" + hLabel(h), "data-value": row[key] });
    cell(tr, row[key + "_lower"] === null ? "n/a" : `${pct(row[key + "_lower"])} – ${pct(row[key + "_upper"])}`,
         { id: "band-" + hLabel(h) });
    tbody.appendChild(tr);
  }
  drawCurve(row.curve, modelInfo.training_km, result.horizons, unit);
  renderPattern(result, row);
  renderPostResponse(result, row);
  renderContributions(result, row);
  renderProvenance(result.provenance);
}

function renderPattern(result, row) {
  const suffix = "_" + hLabel(result.horizons[0]);
  const causes = Object.keys(row).filter((k) => k.startsWith("cif_") && k.endsWith(suffix))
    .map((k) => k.slice(4, -suffix.length));
  $("pattern-panel").hidden = causes.length === 0;
  if (!causes.length) return;
  $("likely-pattern").textContent = row.likely_pattern;
  const head = el("tr");
  head.appendChild(el("th", {}, "horizon"));
  causes.forEach((c) => head.appendChild(el("th", {}, c)));
  $("pattern-table").querySelector("thead").replaceChildren(head);
  const body = $("pattern-table").querySelector("tbody");
  body.replaceChildren();
  const rows = result.horizons.map((h) => {
    const tr = el("tr");
    cell(tr, `${hLabel(h)} ${result.provenance.time_unit}`);
    const parts = causes.map((c, k) => {
      const v = row[`cif_${c}_${hLabel(h)}`];
      cell(tr, pct(v), { id: `cif-${c}-${hLabel(h)}`, "data-value": v });
      return { name: c, value: v, color: COLORS[k % COLORS.length] };
    });
    body.appendChild(tr);
    const total = parts.reduce((a, p) => a + p.value, 0);
    return { label: `${hLabel(h)} ${result.provenance.time_unit}`, parts, note: pct(total) };
  });
  drawBars("pattern-chart", rows, { label: "pattern incidence", max: 1, ticks: [0, 0.25, 0.5, 0.75, 1],
    tickLabel: (v) => Math.round(v * 100) + "%", legend: causes.map((c, k) => [COLORS[k % COLORS.length], c]) });
}

function renderPostResponse(result, row) {
  const landmark = result.provenance.post_response;
  const given = landmark && row.post_response_median_time !== undefined &&
    result.horizons.some((h) => row[`post_response_survival_${hLabel(h)}`] !== null);
  $("post-response-panel").hidden = !given;
  if (!given) return;
  const unit = result.provenance.time_unit;
  $("post-response-note").textContent = `Re-scored with the best response, for a patient still progression-free ` +
    `${landmark.landmark_time} ${unit} after infusion (${landmark.n} such patients, ${landmark.events} events; ` +
    `out-of-fold C ${num(landmark.validated_c_index, 3)}). Horizons from infusion.`;
  const body = $("post-response-table").querySelector("tbody");
  body.replaceChildren();
  for (const h of result.horizons) {
    const key = `post_response_survival_${hLabel(h)}`;
    if (row[key] === null) continue;
    const tr = el("tr");
    cell(tr, `${hLabel(h)} ${unit}`);
    cell(tr, pct(row[key]), { id: "post-surv-" + hLabel(h), "data-value": row[key] });
    cell(tr, row[key + "_lower"] === null ? "n/a" : `${pct(row[key + "_lower"])} – ${pct(row[key + "_upper"])}`);
    body.appendChild(tr);
  }
  const median = row.post_response_median_time;
  $("post-response-median").textContent = median === null ? "not reached" : `${num(median, 1)} ${unit}`;
  $("post-response-pattern").textContent = row.post_response_likely_pattern ?? "n/a";
}

function renderContributions(result, row) {
  $("contribution-method").textContent = "(" + result.contribution_method + ")";
  const entries = Object.entries(row.contributions).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  const span = Math.max(0.25, ...entries.map(([, v]) => Math.abs(v)));
  const rows = entries.map(([name, v]) => ({ label: name, note: (v >= 0 ? "+" : "") + num(v, 3),
    parts: [{ name, value: v, color: v >= 0 ? "#c0392b" : "#2a9d8f" }] }));
  drawBars("contribution-chart", rows, { label: "contributions", min: -span, max: span, diverging: true, left: 100,
    ticks: [-span, 0, span], tickLabel: (v) => num(v, 2),
    legend: [["#c0392b", "raises risk"], ["#2a9d8f", "lowers risk"]] });
  $("contribution-chart").querySelectorAll("text").forEach((t) => t.setAttribute("class", "contribution-label"));
  $("contribution-chart").dataset.values = JSON.stringify(row.contributions);
}

function renderProvenance(p) {
  const body = $("provenance").querySelector("tbody");
  body.replaceChildren();
  for (const [k, v] of Object.entries(p)) {
    if (v !== null && typeof v === "object") continue; // post_response: its own panel
    const tr = el("tr");
    cell(tr, k.replaceAll("_", " "));
    cell(tr, v === null ? "n/a" : typeof v === "number" ? String(Number(v.toFixed(3))) : String(v), { id: "prov-" + k });
    body.appendChild(tr);
  }
}

async function submit(event) {
  event.preventDefault();
  const token = $("api-token").value;
  if (token) sessionStorage.setItem("cnslrisk-token", token);
  const patient = readPatient();
  $("submit").disabled = true;
  try {
    const r = await call("v1/predict?curve=true", { method: "POST", headers: headers(true), body: JSON.stringify(patient) });
    showErrors(r.ok ? [] : r.body.detail);
    if (r.ok) {
      if (!modelInfo.training_km) await loadModel();
      render(r.body, patient);
    }
  } finally {
    $("submit").disabled = false;
    document.body.dataset.state = "done";
  }
}

async function loadModel() {
  const r = await call("v1/model", { headers: headers(false) });
  if (!r.ok) {
    showErrors(r.body.detail);
    return false;
  }
  const fresh = !modelInfo;
  modelInfo = r.body;
  if (fresh) buildForm(modelInfo.inputs);
  showModel(modelInfo);
  return true;
}

async function start() {
  $("patient-form").addEventListener("submit", submit);
  $("print").addEventListener("click", () => window.print());
  $("api-token").addEventListener("change", () => { if (!modelInfo) loadModel(); });
  await loadModel();
  document.body.dataset.state = "ready";
}

start();
