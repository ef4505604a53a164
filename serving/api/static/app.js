// cnslrisk web page: the form comes from GET v1/model (fields with their clinical labels, units, levels and how an
// unknown value is treated), the prediction from POST v1/predict?curve=true. A result is on screen only for the
// values on screen: editing any field or a failed submit removes it. Plain JS modules, no outside resources.
"use strict";

import { render } from "./results.js";

const UNKNOWN = ":unknown"; // the value of the explicit "unknown" choice (not a level of any field)
let modelInfo = null;
let formVersion = 0; // bumped by every edit: a response for an older version is dropped

const $ = (id) => document.getElementById(id);

function el(tag, attrs, text) {
  const node = document.createElement(tag);
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
  if (response.status === 401) $("token-row").hidden = false;
  const body = await response.json().catch(() => ({ detail: [{ loc: [], msg: "unreadable response" }] }));
  return { ok: response.ok, status: response.status, body };
}

// --- the form ------------------------------------------------------------------------------------------
// what "unknown" does, said once: the model imputes every covariate or none
function unknownHelp(inputs) {
  const rules = new Set(inputs.filter((s) => s.required).map((s) => s.unknown));
  if (rules.has("imputed")) return "“Unknown” is scored as the training median or most frequent value (the " +
    "imputation declared when this model was trained), and the result says so.";
  return "This model was trained without imputation: it cannot score a patient with an “unknown” value, and says so.";
}

const sentence = (text) => (text && !/[.!?]$/.test(text) ? text + "." : text);

function rangeHelp(spec) {
  if (spec.type !== "number" && spec.type !== "integer") return "";
  const unit = spec.unit ? " " + spec.unit : "";
  const whole = spec.type === "integer" ? "A whole number, " : "";
  if (spec.min !== null && spec.max !== null) return `${whole}${spec.min} to ${spec.max}${unit}.`;
  if (spec.min !== null) return `${whole}${spec.min_exclusive ? "above" : "at least"} ${spec.min}${unit}.`;
  return "";
}

function choice(spec) {
  const input = el("select", { id: "f-" + spec.name, name: spec.name });
  const options = spec.required ? [["", "— choose —"]] : [["", spec.role === "identifier" ? "" : "not known yet"]];
  if (spec.type === "boolean") options.push(["true", "yes"], ["false", "no"]);
  else for (const level of spec.levels) options.push([level, spec.level_labels[level] || level]);
  if (spec.required) options.push([UNKNOWN, "unknown"]);
  for (const [value, label] of options) input.appendChild(el("option", { value }, label));
  input.value = "";
  return input;
}

function numberInput(spec, wrap) {
  const input = el("input", { id: "f-" + spec.name, name: spec.name, type: "number", inputmode: "decimal",
                              step: spec.type === "integer" ? "1" : "any" });
  if (spec.min !== null) input.min = spec.min;
  if (spec.max !== null) input.max = spec.max;
  const unknown = el("input", { id: "u-" + spec.name, type: "checkbox" });
  unknown.addEventListener("change", () => {
    input.disabled = unknown.checked;
    if (unknown.checked) input.value = "";
  });
  const box = el("label", { class: "unknown", for: "u-" + spec.name });
  box.append(unknown, document.createTextNode(" unknown"));
  wrap.dataset.unknownBox = "u-" + spec.name;
  return [input, box];
}

function buildForm(inputs) {
  const box = $("fields");
  box.replaceChildren();
  for (const spec of inputs) {
    const wrap = el("div", { class: "field", id: "w-" + spec.name });
    const label = el("label", { for: "f-" + spec.name }, spec.label + " ");
    if (spec.unit) label.appendChild(el("span", { class: "unit" }, `(${spec.unit})`));
    if (!spec.required) label.appendChild(el("span", { class: "unit" }, " optional"));
    wrap.appendChild(label);
    const controls = el("div", { class: "controls" });
    let control;
    if (spec.type === "boolean" || spec.type === "category") control = [choice(spec)];
    else if (spec.type === "number" || spec.type === "integer") control = numberInput(spec, wrap);
    else control = [el("input", { id: "f-" + spec.name, name: spec.name, type: "text", autocomplete: "off" })];
    controls.append(...control);
    wrap.appendChild(controls);
    const help = [sentence(spec.description), rangeHelp(spec)].filter(Boolean).join(" ");
    wrap.appendChild(el("p", { class: "help", id: "h-" + spec.name }, help));
    control[0].setAttribute("aria-describedby", "h-" + spec.name);
    box.appendChild(wrap);
  }
}

// the patient as JSON, and the required fields left unanswered (neither a value nor "unknown")
function readPatient() {
  const patient = {};
  const unanswered = [];
  for (const spec of modelInfo.inputs) {
    const input = $("f-" + spec.name);
    const raw = input.value.trim();
    const unknownBox = $("u-" + spec.name);
    if (raw === UNKNOWN || (unknownBox && unknownBox.checked)) {
      patient[spec.name] = null;
    } else if (raw === "") {
      if (spec.required) unanswered.push(spec);
    } else if (spec.type === "boolean") {
      patient[spec.name] = raw === "true";
    } else if (spec.type === "number" || spec.type === "integer") {
      patient[spec.name] = Number(raw);
    } else {
      patient[spec.name] = raw;
    }
  }
  return { patient, unanswered };
}

// --- results and errors ----------------------------------------------------------------------------------
function clearResult(reason) {
  const had = !$("results").hidden;
  $("results").hidden = true;
  $("print").hidden = true;
  $("stale").hidden = !(had && reason === "edited");
  document.body.dataset.result = "none";
}

function plainMessage(item) {
  // the server's "row 1, field pce: ..." in the form's words: the field's label, yes/no for booleans
  const text = String(item.msg).replace(/^row \d+, /, "").replace(/^field [^:]+: /, "")
    .replaceAll("one of {true, false}", "yes or no");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function showErrors(items) {
  const box = $("form-errors");
  const list = box.querySelector("ul");
  list.replaceChildren();
  document.querySelectorAll(".field.invalid").forEach((n) => n.classList.remove("invalid"));
  document.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
  for (const item of items) {
    const name = (item.loc || []).filter((p) => typeof p === "string" && !["body", "query"].includes(p)).pop();
    const spec = modelInfo && modelInfo.inputs.find((s) => s.name === name);
    const li = el("li", { "data-field": name || "" }, spec ? `${spec.label}: ${plainMessage(item)}` : item.msg);
    list.appendChild(li);
    if (name && $("w-" + name)) {
      $("w-" + name).classList.add("invalid");
      $("f-" + name).setAttribute("aria-invalid", "true");
    }
  }
  box.hidden = items.length === 0;
}

async function submit(event) {
  event.preventDefault();
  const token = $("api-token").value;
  if (token) sessionStorage.setItem("cnslrisk-token", token);
  const version = formVersion;
  const { patient, unanswered } = readPatient();
  clearResult("submitted");
  if (unanswered.length) {
    showErrors(unanswered.map((s) => ({ loc: ["body", s.name], msg: "choose a value, or “unknown” if it is not known" })));
    document.body.dataset.state = "done";
    return;
  }
  $("submit").disabled = true;
  try {
    const r = await call("v1/predict?curve=true", { method: "POST", headers: headers(true), body: JSON.stringify(patient) });
    if (version !== formVersion) return; // edited while waiting: this answer is for values no longer shown
    showErrors(r.ok ? [] : r.body.detail || []);
    if (r.ok) {
      if (!modelInfo.training_km) await loadModel();
      render(r.body, patient, modelInfo);
      $("results").hidden = false;
      $("print").hidden = false;
      document.body.dataset.result = "shown";
      $("results-title").focus({ preventScroll: true });
      $("results").scrollIntoView({ block: "start" });
    }
  } catch (error) {
    showErrors([{ loc: [], msg: `the server could not be reached (${error.message})` }]);
  } finally {
    $("submit").disabled = false;
    document.body.dataset.state = "done";
  }
}

function edited(event) {
  if (event.target.id === "api-token") return; // the token is not a patient value
  formVersion += 1;
  if (!$("results").hidden) clearResult("edited");
}

function showNotice(p) {
  const box = $("notice");
  box.hidden = !p.not_for_clinical_use;
  box.textContent = p.not_for_clinical_use ? p.notice : "";
}

async function loadModel() {
  const r = await call("v1/model", { headers: headers(false) });
  if (!r.ok) {
    showErrors(r.body.detail || []);
    return false;
  }
  const fresh = !modelInfo;
  modelInfo = r.body;
  if (fresh) {
    buildForm(modelInfo.inputs);
    $("unknown-help").textContent = unknownHelp(modelInfo.inputs);
  }
  const p = modelInfo.provenance;
  $("model-line").textContent = `Model ${modelInfo.name} version ${modelInfo.version}` +
    (modelInfo.alias ? ` (${modelInfo.alias})` : "") + `, trained on a ${p.training_source} cohort of ` +
    `${p.training_n} patients with ${p.training_events} events.`;
  showNotice(p);
  return true;
}

async function start() {
  $("patient-form").addEventListener("submit", submit);
  $("patient-form").addEventListener("input", edited);
  $("patient-form").addEventListener("change", edited);
  $("print").addEventListener("click", () => window.print());
  $("api-token").addEventListener("change", () => { if (!modelInfo) loadModel(); });
  await loadModel();
  document.body.dataset.state = "ready";
}

start();
