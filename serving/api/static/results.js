// Render one prediction: warnings first, the plain-language sentence with its icon array, then the figures, each
// with its definition. The sentences, counts out of 100 and reworded warnings are the API's plain_language field
// (the CLI prints the same); numbers are rounded here by the rules of format.js (= serving/labels.py).
"use strict";

import { curveChart, iconArray, legend, outcomeColor, stackedBars, FREE_COLOR } from "./charts.js";
import { band, duration, percent, signed, valueText } from "./format.js";

const KM_COLOR = "#6b6b6b";
const TYPES = { cox: "Cox proportional hazards model", coxnet: "penalised (elastic-net) Cox model",
                rsf: "random survival forest" };

const $ = (id) => document.getElementById(id);
const hl = (h) => String(Number(h)); // 6 -> "6", 0.5 -> "0.5", as the API's column names

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function row(cells, header) {
  const tr = el("tr");
  cells.forEach((c, k) => {
    const cell = el(header ? "th" : k === 0 ? "th" : "td", header ? { scope: "col" } : k === 0 ? { scope: "row" } : {});
    if (c instanceof Node) cell.appendChild(c);
    else if (c && typeof c === "object") {
      cell.textContent = c.text;
      for (const [key, value] of Object.entries(c.attrs || {})) cell.setAttribute(key, value);
    } else cell.textContent = c;
    tr.appendChild(cell);
  });
  return tr;
}

function fill(table, head, rows) {
  table.querySelector("thead")?.replaceChildren(row(head, true));
  table.querySelector("tbody").replaceChildren(...rows.map((r) => row(r)));
}

function stamp() {
  const d = new Date();
  const two = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
}

// S(t) of a step curve at time t (1 before its first step)
function stepAt(curve, t) {
  let value = 1;
  curve.time.forEach((time, i) => { if (time <= t) value = curve.survival[i]; });
  return value;
}

function causesOf(rowData, prefix, horizon) {
  const head = `${prefix}cif_`, tail = "_" + hl(horizon);
  return Object.keys(rowData).filter((k) => k.startsWith(head) && k.endsWith(tail))
    .map((k) => k.slice(head.length, -tail.length));
}

function patternRows(rowData, prefix, horizons, causes, coherent, unit) {
  return horizons.map((h) => {
    const parts = causes.map((c) => ({ outcome: c, value: rowData[`${prefix}cif_${c}_${hl(h)}`] }));
    const survival = rowData[`${prefix}survival_${hl(h)}`];
    return { label: duration(h, unit), parts: coherent ? [{ outcome: "free", value: survival }, ...parts] : parts };
  });
}

function patternLegend(causes, names, coherent) {
  const items = causes.map((c) => ({ color: outcomeColor(c, causes), label: names[c] || c, area: true }));
  return legend(coherent ? [{ color: FREE_COLOR, label: "alive and free of CNS progression", area: true }, ...items]
    : items);
}

function renderWarnings(pl) {
  const items = [];
  for (const w of pl.warnings) items.push(["warning", w]);
  if (pl.wide_bands) items.push(["wide-band", pl.wide_bands]);
  if (pl.post_response && pl.post_response.wide_bands) {
    items.push(["wide-band", pl.post_response.wide_bands]);
  }
  for (const s of pl.scope) if (s.ignores.length) items.push(["scope", s.text]);
  const calm = items.length === 0;
  if (calm) items.push(["none", "No applicability warnings: every value entered lies within the training cohort’s " +
                                "range, and no 95 % band is too wide to guide a decision."]);
  $("warnings").replaceChildren(...items.map(([cls, text]) => el("li", { class: cls }, text)));
  $("warnings-box").classList.toggle("calm", calm);
  $("warnings-title").textContent = calm ? "Checks" : "Read first";
}

function renderPlain(pl, causes) {
  const choose = (h) => {
    const entry = pl.horizons.find((e) => e.horizon === h);
    $("summary").textContent = entry.sentence;
    $("icon-array").replaceChildren(iconArray(entry.per_100, causes));
    $("icon-legend").replaceChildren(legend(entry.per_100.map((p) => ({
      color: outcomeColor(p.outcome, causes), label: `${p.count} ${p.label}`, area: true }))));
    $("breakdown").textContent = entry.breakdown || "";
    $("horizon-choice").querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed",
      String(Number(b.dataset.horizon) === h)));
  };
  $("horizon-choice").replaceChildren(...pl.horizons.map((e) => {
    const b = el("button", { type: "button", "data-horizon": e.horizon, "aria-pressed": "false" }, "at " + e.time);
    b.addEventListener("click", () => choose(e.horizon));
    return b;
  }));
  choose(pl.headline_horizon);
}

function renderCurve(result, r, info, unit) {
  const horizons = result.horizons;
  const xMax = Math.min(horizons[horizons.length - 1] * 1.5, Math.max(...r.curve.time, ...info.training_km.time));
  const km = info.training_km;
  const series = [
    { times: km.time, values: km.survival, color: KM_COLOR, dash: "5 4", cls: "km", width: 1.6, start: { t: 0, v: 1 } },
    { times: r.curve.time, values: r.curve.survival, lower: r.curve.lower, upper: r.curve.upper, color: FREE_COLOR,
      cls: "patient", start: { t: 0, v: 1 } },
  ];
  $("curve-chart").replaceChildren(curveChart(series, { xMin: 0, xMax, marks: horizons, label:
    "CNS-PFS1 of this patient with its 95 % band and of the training cohort", xTitle: `${unit} from infusion` }));
  $("curve-legend").replaceChildren(legend([{ color: FREE_COLOR, label: "this patient" },
    { color: FREE_COLOR, label: "95 % band", area: true }, { color: KM_COLOR, label: "training cohort (Kaplan–Meier)",
    dash: true }]));
  const wide = Object.fromEntries(r.plain_language.horizons.map((h) => [h.horizon, h.wide_band]));
  fill($("survival-table"), ["Time from infusion", "Alive and free of CNS progression", "95 % band"], horizons.map((h) => {
    const key = "survival_" + hl(h);
    const cell = el("span", {}, band(r[key + "_lower"], r[key + "_upper"]));
    if (wide[h]) cell.appendChild(el("span", { class: "flag" }, " too wide to guide a decision"));
    const holder = el("span", { id: "band-" + hl(h) });
    holder.appendChild(cell);
    return [duration(h, unit), { text: percent(r[key]), attrs: { id: "surv-" + hl(h), "data-value": r[key] } }, holder];
  }));
  $("band-def").textContent = "Alive and free of CNS progression (CNS-PFS1): the chance of having neither CNS " +
    "progression nor died by that time. 95 % band: the range in which the model’s estimate lies with 95 % " +
    `confidence, given the training cohort’s size; computed by ${result.provenance.interval_method}.`;
}

function renderPattern(result, r, unit) {
  const pl = r.plain_language, horizons = result.horizons;
  const causes = causesOf(r, "", horizons[0]);
  $("pattern-panel").hidden = causes.length === 0;
  if (!causes.length) return;
  const names = pl.cause_labels;
  const coherent = !pl.horizons.some((h) => h.per_100.some((p) => p.outcome === "progressed"));
  $("pattern-chart").replaceChildren(stackedBars(patternRows(r, "", horizons, causes, coherent, unit), causes,
    "Cumulative incidence of each relapse pattern by time from infusion"));
  $("pattern-legend").replaceChildren(patternLegend(causes, names, coherent));
  $("likely-pattern-text").textContent = pl.likely_pattern || "";
  fill($("pattern-table"), ["Time from infusion", ...causes.map((c) => names[c] || c), "Any (progression or death)"],
    horizons.map((h) => {
      const values = causes.map((c) => r[`cif_${c}_${hl(h)}`]);
      return [duration(h, unit), ...causes.map((c, k) => ({ text: percent(values[k]),
        attrs: { id: `cif-${c}-${hl(h)}`, "data-value": values[k] } })), percent(values.reduce((a, v) => a + v, 0))];
    }));
  $("pattern-scope").textContent = (pl.scope.find((s) => s.panel === "relapse-pattern") || { text: "" }).text;
}

function renderPostResponse(result, r, unit) {
  const post = r.plain_language.post_response;
  const landmark = result.provenance.post_response;
  $("post-response-panel").hidden = !post;
  if (!post) return;
  const L = post.landmark_time, horizons = post.horizons.map((h) => h.horizon);
  const atLandmark = stepAt(r.curve, L);
  const after = r.curve.time.map((t, i) => [t, r.curve.survival[i]]).filter(([t]) => t > L);
  $("post-response-title").textContent = `After the first response assessment (${duration(L, unit)})`;
  $("post-response-condition").textContent = post.condition;
  $("post-response-summary").textContent = post.summary;
  const curve = r.post_response_curve;
  const xMax = horizons[horizons.length - 1] * 1.25;
  $("post-response-chart").replaceChildren(curveChart([
    { times: after.map(([t]) => t), values: after.map(([, s]) => s / atLandmark), color: KM_COLOR, dash: "5 4",
      cls: "conditional", width: 1.8, start: { t: L, v: 1 } },
    { times: curve.time.slice(1), values: curve.survival.slice(1), lower: curve.lower.slice(1),
      upper: curve.upper.slice(1), color: FREE_COLOR, cls: "post-response", start: { t: L, v: 1 } },
  ], { xMin: 0, xMax, marks: [L, ...horizons], xTitle: `${unit} from infusion`,
       label: `CNS-PFS1 from the ${duration(L, unit)} landmark: post-response model and at-infusion model` }));
  $("post-response-legend").replaceChildren(legend([
    { color: FREE_COLOR, label: "post-response model (with the best response)" },
    { color: FREE_COLOR, label: "95 % band", area: true },
    { color: KM_COLOR, label: `at-infusion model, for a patient free of progression at ${duration(L, unit)}`,
      dash: true }]));
  fill($("post-response-table"), ["Time from infusion", "Alive and free of CNS progression", "95 % band",
    "At-infusion model, same condition"], horizons.map((h) => {
    const key = "post_response_survival_" + hl(h);
    return [duration(h, unit), { text: percent(r[key]), attrs: { id: "post-surv-" + hl(h), "data-value": r[key] } },
      band(r[key + "_lower"], r[key + "_upper"]), percent(r["survival_" + hl(h)] / atLandmark)];
  }));
  const causes = causesOf(r, "post_response_", horizons[0]);
  const names = r.plain_language.cause_labels;
  const coherent = !post.horizons.some((h) => h.per_100.some((p) => p.outcome === "progressed"));
  $("post-response-pattern-chart").replaceChildren(stackedBars(patternRows(r, "post_response_", horizons, causes,
    coherent, unit), causes, "Post-response relapse pattern by time from infusion"));
  $("post-response-pattern-legend").replaceChildren(patternLegend(causes, names, coherent));
  $("post-response-likely").textContent = post.likely_pattern || "";
  $("post-response-scope").textContent = (r.plain_language.scope.find((s) => s.panel === "post-response") ||
    { text: "" }).text;
  $("post-response-def").textContent = `The post-response model was refitted on the ${landmark.n} training patients ` +
    `still free of progression at ${duration(L, unit)} with a known best response (${landmark.events} events; ` +
    `out-of-fold C-index ${Number(landmark.validated_c_index).toFixed(2)}). The dashed curve is the at-infusion ` +
    `prediction for the same condition (its CNS-PFS1 divided by its value at ${duration(L, unit)}).`;
}

function renderContributions(result, r, info) {
  const cox = ["cox", "coxnet"].includes(result.provenance.model_type);
  const specs = Object.fromEntries(info.inputs.map((s) => [s.name, s]));
  const entries = Object.entries(r.contributions).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
  const span = Math.max(1e-9, ...entries.map(([, v]) => Math.abs(v)));
  fill($("contribution-table"), ["Covariate", "Entered", cox ? "Log hazard ratio term" : "Change in risk score"],
    entries.map(([name, v]) => {
      const effect = el("span", { class: "effect", "data-field": name, "data-value": v });
      const bar = el("span", { class: v >= 0 ? "bar up" : "bar down", "aria-hidden": "true" });
      bar.style.width = `${(Math.abs(v) / span) * 3}em`;
      effect.append(bar, cox ? `${signed(v, 2)} (hazard ×${Math.exp(v).toFixed(1)})` : signed(v, 2));
      return [specs[name] ? specs[name].label : name, valueText(specs[name] || { type: "string" }, r.entered[name]),
              effect];
    }));
  $("contribution-def").textContent = cox
    ? "Each covariate’s term in the log hazard ratio against an average training patient: positive raises the risk, " +
      "negative lowers it, and the terms add up to the risk score. ×2.5 means this value multiplies the hazard by 2.5."
    : "How much the forest’s risk score changes when this covariate alone is set to its reference (no, the first " +
      "level, or the training mean): a one-at-a-time sensitivity; the changes do not add up to the risk score.";
}

function renderProvenance(p) {
  const yesNo = (v) => (v === null || v === undefined ? "not recorded" : v ? "yes" : "no");
  const figure = (v, d) => (v === null || v === undefined ? "n/a" : Number(v).toFixed(d));
  const lines = [
    ["Model", `${p.model_name} version ${p.model_version}` + (p.model_alias ? ` (${p.model_alias})` : ""), "model_version"],
    ["Model type", TYPES[p.model_type] || p.model_type],
    ["Trained on", `a ${p.training_source} cohort of ${p.training_n} patients, ${p.training_events} events`],
    ["Discrimination (out-of-fold C-index; 0.5 is chance)", figure(p.validated_c_index, 2)],
    ["Accuracy (out-of-fold integrated Brier score; lower is better)", figure(p.validated_ibs, 3)],
    ["Better than the average curve (Kaplan–Meier) out of fold", yesNo(p.beats_null)],
    ["Cohort large enough (Riley et al.’s criteria)", yesNo(p.sample_size_adequate)],
  ];
  $("provenance").querySelector("tbody").replaceChildren(...lines.map(([k, v, id]) => {
    const tr = row([k, v]);
    if (id) tr.lastChild.id = "prov-" + id;
    return tr;
  }));
}

function riskScore(p, r) {
  const cox = ["cox", "coxnet"].includes(p.model_type);
  $("risk-score").textContent = signed(r.risk_score, 2);
  $("risk-score").dataset.value = r.risk_score;
  $("risk-score-label").textContent = cox ? "Risk score (log hazard ratio)" : "Risk score (forest)";
  $("risk-score-def").textContent = cox
    ? "Log hazard ratio against an average training patient: 0 is average, +0.69 doubles the hazard."
    : "The forest’s ensemble mortality (its cumulative hazard summed over the training event times): higher means " +
      "an earlier event. It is not a log hazard; compare it only with other patients’ scores.";
}

export function render(result, patient, info) {
  const r = { ...result.predictions[0], entered: patient };
  const p = result.provenance, unit = p.time_unit, pl = r.plain_language;
  const specs = Object.fromEntries(info.inputs.map((s) => [s.name, s]));
  $("notice").hidden = !p.not_for_clinical_use;
  $("notice").textContent = p.not_for_clinical_use ? p.notice : "";
  $("patient-label").textContent = r.patient_id ? "for " + r.patient_id : "";
  $("made").textContent = `Made ${stamp()} with model ${p.model_name} version ${p.model_version}` +
    (p.model_alias ? ` (${p.model_alias})` : "") + `, a ${TYPES[p.model_type] || p.model_type}.`;
  $("entered").textContent = "For: " + Object.entries(patient).filter(([k]) => specs[k])
    .map(([k, v]) => `${specs[k].label}: ${valueText(specs[k], v)}`).join("; ") + ".";
  renderWarnings(pl);
  const causes = causesOf(r, "", result.horizons[0]);
  renderPlain(pl, causes);
  $("median").textContent = duration(r.median_time, unit);
  $("median").dataset.value = r.median_time;
  $("median-def").textContent = "The time by which half of patients like this would have had CNS progression or " +
    "died; “not reached” when more than half remain free over the follow-up the model covers.";
  $("risk-group").textContent = r.risk_group;
  riskScore(p, r);
  renderCurve(result, r, info, unit);
  renderPattern(result, r, unit);
  renderPostResponse(result, r, unit);
  renderContributions(result, r, info);
  renderProvenance(p);
}
