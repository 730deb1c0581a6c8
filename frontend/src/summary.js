// Lines of text describing a value summary (nodegraph.types.summarize): shapes, dtype, device, min/mean/max.
function n(v) {
  if (v == null) return "–";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toFixed(4);
}

function tensor(t) {
  if (!t || typeof t !== "object") return String(t);
  let s = `[${(t.shape || []).join(", ")}] ${t.dtype || ""} ${t.device || ""}`.trim();
  if (t.values) return `${s}  = [${t.values.map(n).join(", ")}]`;
  if (t.min !== undefined) s += `  min ${n(t.min)} · mean ${n(t.mean)} · max ${n(t.max)}`;
  return s;
}

export function summaryLines(s) {
  if (!s || typeof s !== "object") return [String(s)];
  const lines = [];
  if (s.kind === "Tensor") return [`Tensor ${tensor(s)}`];
  lines.push(s.kind || "value");
  for (const [k, v] of Object.entries(s)) {
    if (k === "kind") continue;
    if (v && typeof v === "object" && !Array.isArray(v) && "shape" in v) lines.push(`${k}: ${tensor(v)}`);
    else if (Array.isArray(v) && v.length && typeof v[0] === "object") lines.push(`${k}: ${v.map((x) => summaryLines(x).join(" ")).join("; ")}`);
    else if (v && typeof v === "object" && !Array.isArray(v))
      lines.push(`${k}: ${Object.entries(v).map(([a, b]) => `${a} ${n(b)}`).join(", ")}`);
    else lines.push(`${k}: ${Array.isArray(v) ? "[" + v.map(n).join(", ") + "]" : n(v)}`);
  }
  return lines;
}
