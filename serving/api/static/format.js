// Numbers and words as the page shows them; the same rules as serving/labels.py (tests compare the two):
// probabilities in whole percent (<1 % and >99 % at the ends), durations to one decimal at most with a
// singular unit for 1, yes/no for booleans, level labels for categories.
"use strict";

const PCT = "\u00a0%"; // a no-break space: "43 %" never splits over two lines

export function percent(p) {
  if (p === null || p === undefined || !Number.isFinite(p)) return "n/a";
  if (p < 0.005) return "<1" + PCT;
  if (p >= 0.995) return ">99" + PCT;
  return Math.floor(p * 100 + 0.5) + PCT;
}

export function band(lower, upper) {
  if (lower === null || lower === undefined || upper === null || upper === undefined) return "n/a";
  return `${percent(lower)} – ${percent(upper)}`;
}

export function roundHalfUp(value, digits) {
  const scale = 10 ** digits;
  return Math.sign(value) * Math.floor(Math.abs(value) * scale + 0.5) / scale;
}

export function duration(value, unit) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "not reached";
  const rounded = roundHalfUp(value, 1);
  const singular = unit.endsWith("s") ? unit.slice(0, -1) : unit;
  return `${rounded}\u00a0${rounded === 1 ? singular : unit}`;
}

export function signed(value, digits) {
  const text = Math.abs(value).toFixed(digits);
  return (value >= 0 ? "+" : "−") + text;
}

// a number with its field's unit, left out where the label already names it (as serving/labels.py with_unit)
export function withUnit(spec, text) {
  if (!spec.unit) return text;
  const label = new Set(spec.label.toLowerCase().split(/\s+/));
  return spec.unit.toLowerCase().split(/\s+/).some((w) => label.has(w)) ? text : `${text}\u00a0${spec.unit}`;
}

// one entered value as a person reads it: yes/no, unknown, the level's label, a number with its unit
export function valueText(spec, value) {
  if (value === null) return "unknown";
  if (spec.type === "boolean") return value ? "yes" : "no";
  if (spec.type === "category") return (spec.level_labels || {})[value] || String(value).replaceAll("_", " ");
  if (spec.type === "number" || spec.type === "integer") return withUnit(spec, String(value));
  return String(value);
}
