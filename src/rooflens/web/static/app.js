// rooflens page: reads controls, asks the API, draws what it returns. It computes no figure itself:
// numbers come from the report, plots are the server's plotly figures.
"use strict";

const DEFAULTS = {
  model: "llama-3-8b", hardware: "h100-sxm", batch: 1, prompt: 1024, gen: 128,
  w: 16, a: 16, kv: 16, fa: 1, phase: "decode", engine: "",
  tp: 1, pp: 1, ep: 1, quant: "", kvf: "", spec: "", offw: 0, offe: 0, group: "", mode: "analyze",
};
const MODES = ["analyze", "compare", "plan", "serve"];
const PARALLEL = ["tp", "pp", "ep"];
const OFFLOAD = { offw: "offload_weights", offe: "offload_experts" };
const FIT_CHANGES = { tp: "tp", quant: "quant", offload_weights: "offw", offload_experts: "offe" };
const CUSTOM_FIELDS = ["hw_name", "hw_mem", "hw_bw", "hw_fp16", "hw_int8"];
const COLUMNS = [
  ["name", "operator"], ["phase", "phase"], ["block", "block"], ["kind", "kind"], ["count", "×"],
  ["flops", "FLOPs"], ["bytes", "bytes"], ["intensity", "FLOP/B"], ["bound", "bound"],
  ["time_s", "ideal time"], ["estimate_s", "estimate"],
];
const PLOTS = ["roofline", "breakdown", "memory", "timeline"];

const $ = (id) => document.getElementById(id);
const state = { ...DEFAULTS, config: null, custom: null, pins: [], planFormats: [] };
let report = null;
let figures = null;
let sortKey = "time_s";
let sortDir = -1;
let inflight = null;
let renders = 0;
let latest = 0;
let timer = null;

// --- formatting (display only) --------------------------------------------------------------
function si(v, unit) {
  if (v === null || v === undefined) return "–";
  const a = Math.abs(v);
  const steps = [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"], [1, ""], [1e-3, "m"], [1e-6, "µ"], [1e-9, "n"]];
  for (const [scale, p] of steps) if (a >= scale) return (v / scale).toPrecision(3) + " " + p + unit;
  return v.toPrecision(3) + " " + unit;
}
const secs = (v) => si(v, "s");
// Three significant digits written out: 2,290 (not 2.29e+3), 0.125.
const plain = (v) => (v === null || v === undefined || !isFinite(v)) ? "–"
  : Math.abs(v) >= 100 ? Number(v.toPrecision(3)).toLocaleString("en-US") : v.toPrecision(3);
const esc = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const bytes = (v) => si(v, "B");

// --- state <-> URL ---------------------------------------------------------------------------
function b64encode(text) {
  return btoa(unescape(encodeURIComponent(text))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
function b64decode(text) {
  return decodeURIComponent(escape(atob(text.replace(/-/g, "+").replace(/_/g, "/"))));
}

function readUrl() {
  const q = new URLSearchParams(location.search);
  for (const key of Object.keys(DEFAULTS)) {
    if (!q.has(key)) continue;
    state[key] = typeof DEFAULTS[key] === "number" ? Number(q.get(key)) : q.get(key);
  }
  if (q.has("config")) {
    try { state.config = JSON.parse(b64decode(q.get("config"))); } catch { state.config = null; }
  }
  if (q.has("pins")) {
    try { state.pins = JSON.parse(b64decode(q.get("pins"))); } catch { state.pins = []; }
  }
  if (!MODES.includes(state.mode)) state.mode = "analyze";
  if (q.has("hw_name")) {
    state.custom = {};
    for (const f of CUSTOM_FIELDS) state.custom[f] = q.get(f) || "";
  }
}

function writeUrl() {
  const q = new URLSearchParams();
  for (const [key, def] of Object.entries(DEFAULTS)) if (String(state[key]) !== String(def)) q.set(key, state[key]);
  if (state.config) q.set("config", b64encode(JSON.stringify(state.config)));
  if (state.custom) for (const f of CUSTOM_FIELDS) q.set(f, state.custom[f]);
  if (state.pins.length) q.set("pins", b64encode(JSON.stringify(state.pins)));
  const search = q.toString();
  history.replaceState(null, "", search ? "?" + search : location.pathname);
}

// --- controls <-> state ----------------------------------------------------------------------
function log2Slider(name, value) {
  $(name).value = value;
  $(name + "-range").value = Math.round(Math.log2(Math.max(1, value)));
}

function showState() {
  $("model").value = state.config ? "(pasted config)" : state.model;
  $("model").disabled = !!state.config;
  if (state.config) $("config-text").value = JSON.stringify(state.config, null, 1);
  $("hardware").value = state.hardware;
  $("hw-custom").checked = !!state.custom;
  $("hardware").disabled = !!state.custom;
  if (state.custom) {
    $("custom-box").open = true;
    for (const f of CUSTOM_FIELDS) $(f.replace("_", "-")).value = state.custom[f];
  }
  log2Slider("batch", state.batch);
  log2Slider("prompt", state.prompt);
  log2Slider("gen", state.gen);
  $("w-bits").value = String(state.w);
  $("a-bits").value = String(state.a);
  $("kv-bits").value = String(state.kv);
  $("quant").value = state.quant;
  $("kv-format").value = state.kvf;
  // A named format sets the bit widths itself: the bit selects are ignored while one is chosen.
  $("w-bits").disabled = $("a-bits").disabled = !!state.quant;
  $("kv-bits").disabled = !!state.kvf;
  for (const k of [...PARALLEL, ...Object.keys(OFFLOAD)]) $(k).value = state[k];
  $("spec").value = state.spec;
  $("flash").checked = !!Number(state.fa);
  $("engine").value = state.engine;
  $("block-phase").value = state.phase;
}

function customHardware() {
  const c = state.custom;
  const peaks = { fp16: Number(c.hw_fp16) * 1e12 };
  if (Number(c.hw_int8) > 0) peaks.int8 = Number(c.hw_int8) * 1e12;
  return {
    name: c.hw_name || "custom", memory_bytes: Number(c.hw_mem) * 1e9,
    memory_bandwidth: Number(c.hw_bw) * 1e12, peak_flops: peaks,
  };
}

function requestBody() {
  const body = { batch: state.batch, prompt: state.prompt, gen: state.gen, flash_attention: !!Number(state.fa) };
  if (state.quant) body.quant = state.quant; else Object.assign(body, { w_bits: Number(state.w), a_bits: Number(state.a) });
  const settings = {};
  if (state.kvf) settings.kv_format = state.kvf; else body.kv_bits = Number(state.kv);
  if (state.engine) settings.engine = state.engine;
  for (const k of PARALLEL) if (Number(state[k]) !== 1) settings[k] = Number(state[k]);
  for (const [k, name] of Object.entries(OFFLOAD)) if (Number(state[k]) > 0) settings[name] = Number(state[k]);
  if (state.spec.startsWith("heads:")) settings.spec_heads = state.spec.slice(6);
  else if (state.spec.startsWith("draft:")) settings.draft_model = state.spec.slice(6);
  if (Object.keys(settings).length) body.settings = settings;
  if (state.config) body.config = state.config; else body.model = state.model;
  if (state.custom) body.custom_hardware = customHardware(); else body.hardware = state.hardware;
  return body;
}

// --- talking to the API ----------------------------------------------------------------------
async function post(body, path = "/api/analyze") {
  const res = await fetch(path, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    signal: inflight.signal,
  });
  if (body.format === "csv") return res.ok ? { text: await res.text() } : { error: (await res.json()).detail };
  const data = await res.json();
  return res.ok ? data : { error: typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail) };
}

function schedule(delay = 30) {
  clearTimeout(timer);
  timer = setTimeout(update, delay);
}

async function update() {
  writeUrl();
  const mine = ++latest;  // only the newest update may show its numbers and count as a render
  const search = location.search;
  if (inflight) inflight.abort();
  inflight = new AbortController();
  const started = performance.now();
  const asked = requestBody();
  document.body.dataset.request = JSON.stringify(asked);  // what the numbers shown answer
  const body = { ...asked, figures: true };
  if (state.group) body.block_group = state.group;
  $("status").textContent = "updating…";
  setStale(true);  // the numbers shown answer the previous request until this one is answered
  let data;
  try {
    data = await post(body);
  } catch (err) {
    if (err.name === "AbortError") return;
    data = { error: String(err) };
  }
  if (mine !== latest) return;  // superseded while its request was answered
  if (data.error) {
    $("error").textContent = data.error;
    $("error").hidden = false;
    $("status").textContent = "error";
    document.body.dataset.state = "error";
    return;
  }
  $("error").hidden = true;
  setStale(false);
  report = data.report;
  figures = data.figures;
  showNumbers();
  const fitting = report.memory.fits ? null : post(asked, "/api/fit").catch(() => null);
  await drawPlots();
  showFitOptions(fitting ? await fitting : null);
  if (mine !== latest) return;  // superseded while drawing: the newer update renders
  showGroups();
  drawTable();
  findOps();
  const ms = performance.now() - started;
  renders += 1;
  document.body.dataset.renders = String(renders);
  document.body.dataset.rendered = search;
  document.body.dataset.state = "ready";
  document.body.dataset.lastUpdateMs = ms.toFixed(1);
  $("status").textContent = `updated in ${ms.toFixed(0)} ms`;
}

// --- drawing ---------------------------------------------------------------------------------
const RESULTS = ["headline", "notes", "fit-options", "plots", "op-table"];
function setStale(stale) {
  for (const id of RESULTS) $(id).classList.toggle("stale", stale && report !== null);
}

// Plotly's mode bar (shown on hover) sits in the top 30 px at the right: titles go below it.
// Plotly's default colour cycle: the plan's plot gives each device one across its per-format traces.
const PALETTE = ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880", "#FF97FF", "#FECB52"];
const PLOT_CONFIG = { responsive: true, displaylogo: false, displayModeBar: "hover" };
// Titles sit left, under plotly's toolbar, wrapped at word boundaries to the plot's width (a phone
// shows all of a long title over two or three lines).
function clearOfModeBar(layout, el, data = []) {
  const title = typeof layout.title === "string" ? { text: layout.title } : { ...(layout.title || {}) };
  const width = (typeof el === "string" ? $(el) : el).clientWidth || 800;
  const lines = wrapTitle(title.text || "", width);
  const fitted = {
    ...layout,
    title: { ...title, text: lines.join("<br>"), font: { size: 15 }, x: 0.02, xanchor: "left", y: 1, yref: "container", yanchor: "top", pad: { t: 22 + 12 * lines.length } },
    margin: { ...(layout.margin || {}), t: 50 + 18 * lines.length },
  };
  if (width >= 500) return fitted;
  // On a phone a legend goes under the chart, an entry a line, and the chart grows to hold it: at the
  // side it would squeeze the plot to a sliver.
  const legend = layout.legend || {};
  const entries = new Set(data.filter((t) => t.showlegend !== false && t.name).map((t) => t.legendgroup || t.name)).size;
  const base = layout.height || 450;
  if (legend.orientation === "h" && layout.height) return { ...fitted, height: base + 18 * (lines.length - 1) + 80 };
  if (entries < 2) return fitted;
  return {
    ...fitted,
    legend: { ...legend, orientation: "h", x: 0, xanchor: "left", y: -0.3, yanchor: "top" },
    height: base + 18 * (lines.length - 1) + 22 * entries,
  };
}

function wrapTitle(text, width) {
  const per = Math.max(16, Math.floor((width - 24) / 8));  // characters a line holds at 15 px
  const lines = [];
  for (const word of text.split(" ")) {
    const last = lines.length ? lines[lines.length - 1] : null;
    if (last !== null && (last + " " + word).length <= per) lines[lines.length - 1] = last + " " + word;
    else lines.push(word);
  }
  return lines.length ? lines : [""];
}

function setFigure(id, value, text) {
  const el = $(id);
  el.dataset.value = value === null || value === undefined ? "" : String(value);
  el.textContent = text;
}

function estimateText(value, range) {
  if (value === null || value === undefined) return "no estimate";
  return "estimate " + secs(value) + (range ? ` (p10–p90 ${secs(range[0])} – ${secs(range[1])})` : "");
}

function showNumbers() {
  const r = report;
  setFigure("ttft", r.ttft_s, secs(r.ttft_s));
  setFigure("ttft-est", r.ttft_estimate_s, estimateText(r.ttft_estimate_s, r.ttft_estimate_range_s));
  setFigure("tpot", r.decode.tpot_s, secs(r.decode.tpot_s));
  setFigure("tpot-est", r.decode.tpot_estimate_s, estimateText(r.decode.tpot_estimate_s, r.tpot_estimate_range_s));
  const est = r.estimate;
  $("estimate-info").textContent = est === null ? "no efficiency profile: the ideal bound only"
    : `estimate for ${est.engine} (${est.scope})` + (est.extrapolated ? "; extrapolated: no measurement of this engine on this device" : "");
  setFigure("throughput", r.throughput_tokens_per_s, r.throughput_tokens_per_s.toFixed(1));
  setFigure("memory", r.memory.total_bytes, bytes(r.memory.total_bytes));
  setFigure("fits", r.memory.fits, `${r.memory.fits ? "fits" : "does not fit"} in ${bytes(r.memory.capacity_bytes)}; largest batch ${r.memory.max_batch}`);
  $("notes").textContent = (r.notes || []).join(" ");
  const m = r.model;
  $("model-info").textContent = `${m.name}: ${(m.params / 1e9).toFixed(2)} B params, ${m.layers} layers, ${m.num_heads} heads / ${m.num_kv_heads} KV heads`;
  const h = r.hardware;
  $("hardware-info").textContent = `${h.display_name}: ${bytes(h.memory_bytes)}, ${si(h.memory_bandwidth, "B/s")}`;
}

function fitText(o) {
  const c = o.change;
  const what = [];
  if (c.tp) what.push(`TP ${c.tp}`);
  if (c.quant) what.push(c.quant);
  if (c.offload_weights !== undefined) {
    what.push(`${Math.round(c.offload_weights * 100)}% of the weights` + (c.offload_experts !== undefined ? " and experts" : "") + " in host memory");
  }
  return `${what.join(" + ")}: ${bytes(o.total_bytes)} of ${bytes(o.capacity_bytes)}`;
}

function showFitOptions(data) {
  const box = $("fit-options");
  box.hidden = !data || !data.options || data.options.length === 0;
  if (box.hidden) { box.innerHTML = ""; return; }
  box.innerHTML = "Does not fit. It would with: " + data.options.map((o) =>
    `<button type="button" class="fix" data-kind="${esc(o.kind)}" data-change="${esc(JSON.stringify(o.change))}">${esc(fitText(o))}</button>`).join(" ");
}

async function drawPlots() {
  const jobs = PLOTS.map((name) => {
    const fig = figures[name];
    return Plotly.react("plot-" + name, fig.data, clearOfModeBar(fig.layout, "plot-" + name, fig.data), PLOT_CONFIG);
  });
  jobs.push(drawBlock());
  await Promise.all(jobs);
}

async function drawBlock() {
  const phase = figures["block_" + state.phase] ? state.phase : "prefill";
  const fig = figures["block_" + phase];
  const el = $("plot-block");
  await Plotly.react(el, fig.data, clearOfModeBar(fig.layout, el, fig.data), PLOT_CONFIG);
  el.dataset.phase = phase;
  if (!el.dataset.bound) {
    el.dataset.bound = "1";
    el.on("plotly_click", (ev) => {
      const point = ev.points.find((p) => p.customdata !== undefined);
      if (point) showOp(el.dataset.phase, point.customdata);
    });
  }
}

// The layer groups the report's block ops come in (DeepSeek: dense "mla" and "mla, moe" layers).
function showGroups() {
  const groups = [...new Set(report.ops.filter((o) => o.block === "attention" || o.block === "mlp").map((o) => o.group))];
  $("block-group").innerHTML = `<option value="">the most common</option>` + groups.map((g) =>
    `<option value="${esc(g)}">${esc(g || "every layer")}</option>`).join("");
  $("block-group").value = groups.includes(state.group) ? state.group : "";
  $("block-group-label").hidden = groups.length < 2;
}

// The search box: the operator table keeps the rows whose name matches, the block graph dims the rest.
function findOps() {
  const q = $("op-search").value.trim().toLowerCase();
  const match = (name) => !q || name.toLowerCase().includes(q);
  for (const tr of $("op-table").tBodies[0].rows) tr.hidden = !match(tr.cells[0].textContent);
  const el = $("plot-block");
  const nodes = el.data ? el.data.findIndex((t) => t.customdata !== undefined && t.customdata !== null) : -1;
  if (nodes < 0) return;
  const opacity = el.data[nodes].text.map((name) => (match(name) ? 1 : 0.15));
  Plotly.restyle(el, { "marker.opacity": [opacity] }, [nodes]);
  el.dataset.found = String(q ? opacity.filter((v) => v === 1).length : "");
}

function showOp(phase, index) {
  const op = report.ops.filter((o) => o.phase === phase)[index];
  if (!op) return;
  $("op-detail").dataset.op = op.name;
  $("op-detail").innerHTML = `<b>${esc(op.name)}</b> (${phase}, ${esc(op.block)}, ×${op.count}): ` +
    `${si(op.flops, "FLOP")}, ${bytes(op.bytes)} (weights ${bytes(op.weight_bytes)}, ` +
    `KV read ${bytes(op.kv_read_bytes)}), intensity ${plain(op.intensity)} FLOP/B, ` +
    `<b>${op.bound}</b>-bound, ideal ${secs(op.time_s)}` + (op.estimate_s === null ? "" : `, estimate ${secs(op.estimate_s)}`);
}

function drawTable() {
  const thead = $("op-table").tHead;
  thead.innerHTML = "<tr>" + COLUMNS.map(([key, title]) =>
    `<th data-key="${key}">${title}${key === sortKey ? (sortDir < 0 ? " ▼" : " ▲") : ""}</th>`).join("") + "</tr>";
  const rows = [...report.ops].sort((x, y) => {
    const a = x[sortKey], b = y[sortKey];
    if (a === b) return 0;
    if (a === null) return 1;
    if (b === null) return -1;
    return (a < b ? -1 : 1) * sortDir;
  });
  const cell = (op, key) => {
    const v = op[key];
    if (["flops"].includes(key)) return si(v, "");
    if (key.endsWith("bytes")) return bytes(v);
    if (key.endsWith("_s")) return secs(v);
    if (key === "intensity") return plain(v);
    return esc(v);
  };
  $("op-table").tBodies[0].innerHTML = rows.map((op) =>
    `<tr class="${op.bound}">` + COLUMNS.map(([k]) => `<td>${cell(op, k)}</td>`).join("") + "</tr>").join("");
}

// --- modes: Compare, Plan, Serve (each a thin call of its API endpoint) ------------------------
async function callApi(path, body) {
  try {
    const res = await fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const data = await res.json();
    return res.ok ? data : { error: typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail) };
  } catch (err) {
    return { error: String(err) };
  }
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

function bump(key) {
  document.body.dataset[key] = String(Number(document.body.dataset[key] || 0) + 1);
}

function showMode() {
  for (const b of document.querySelectorAll("#modes button")) b.setAttribute("aria-selected", String(b.dataset.mode === state.mode));
  for (const m of MODES.slice(1)) $("mode-" + m).hidden = state.mode !== m;
  $("analysis").hidden = state.mode !== "analyze";
  if (state.mode === "analyze") {
    for (const name of [...PLOTS, "block"]) if ($("plot-" + name).data) Plotly.Plots.resize($("plot-" + name));
  }
  if (state.mode === "compare") showPins();
}

function showPins() {
  $("compare-pins").innerHTML = state.pins.map((b, i) =>
    `<li>${esc(b.model || "pasted config")} on ${esc(b.hardware || "custom device")}, batch ${b.batch}` +
    `${b.quant ? ", " + esc(b.quant) : ""}${b.settings?.tp ? ", TP " + b.settings.tp : ""} ` +
    `<button type="button" data-unpin="${i}" aria-label="unpin set-up ${i + 1}">unpin</button></li>`).join("");
}

async function runCompare() {
  showPins();
  writeUrl();
  const tbody = $("compare-table").tBodies[0];
  if (state.pins.length < 2) {
    tbody.innerHTML = `<tr><td colspan="6">pin at least two set-ups</td></tr>`;
    return;
  }
  const data = await callApi("/api/compare", { analyses: state.pins, figures: true });
  if (data.error) { showError(data.error); return; }
  showError("");
  tbody.innerHTML = data.comparison.analyses.map((r) =>
    `<tr><td>${esc(r.label)}</td><td data-value="${r.ttft_s}">${secs(r.ttft_s)}</td>` +
    `<td data-value="${r.decode.tpot_s}">${secs(r.decode.tpot_s)}</td>` +
    `<td data-value="${r.throughput_tokens_per_s}">${plain(r.throughput_tokens_per_s)}</td>` +
    `<td data-value="${r.memory.total_bytes}">${bytes(r.memory.total_bytes)}</td><td>${r.memory.fits ? "yes" : "no"}</td></tr>`).join("");
  await Plotly.react("plot-compare", data.figure.data, clearOfModeBar(data.figure.layout, "plot-compare", data.figure.data), PLOT_CONFIG);
  bump("compared");
}

// A plan searches one format per request (the server bounds each request's work): the ranked
// table, explanation and cost-against-TPOT plot grow as each format's answer arrives.
async function runPlan() {
  if (!state.planFormats.length) { showError("the formats to plan with have not loaded: reload the page"); return; }
  const hardware = $("plan-hw").value.split(",").map((h) => h.trim()).filter(Boolean);
  const body = {
    prompt: state.prompt, gen: Math.max(2, state.gen),
    ttft: Number($("plan-ttft").value) / 1e3, tpot: Number($("plan-tpot").value) / 1e3, top: 20,
  };
  if (state.config) body.config = state.config; else body.model = state.model;
  if (hardware.length) body.hardware = hardware;
  document.body.dataset.planRequest = JSON.stringify(body);
  document.body.dataset.planFormats = JSON.stringify(state.planFormats);
  $("plan-run").disabled = true;
  const entries = [], traces = [], colours = new Map(), notes = [];
  let best = null, layout = null;
  for (const quant of state.planFormats) {
    $("plan-explain").textContent = `planning ${quant}…`;
    const data = await callApi("/api/plan", { ...body, quants: [quant], figure: true });
    if (data.error) { $("plan-run").disabled = false; showError(data.error); $("plan-explain").textContent = ""; return; }
    const plan = data.plan;
    entries.push(...plan.entries);
    if (plan.entries.length && (!best || plan.entries[0].usd_per_million_tokens < best.entries[0].usd_per_million_tokens)) best = plan;
    if (!plan.entries.length) notes.push(`${quant}: ${plan.explanation.join(" ")}`);
    for (const t of data.figure.data) {  // one colour and one legend entry per device across formats
      const device = t.name.replace(" (misses a target)", "");
      if (!colours.has(device)) colours.set(device, PALETTE[colours.size % PALETTE.length]);
      traces.push({ ...t, legendgroup: t.name, showlegend: !traces.some((u) => u.name === t.name),
        marker: { ...t.marker, color: colours.get(device) } });
    }
    layout = data.figure.layout;
  }
  $("plan-run").disabled = false;
  showError("");
  entries.sort((a, b) => a.usd_per_million_tokens - b.usd_per_million_tokens || a.ttft_s - b.ttft_s);
  $("plan-explain").textContent = best ? best.explanation.join(" ") : notes.join(" ");
  $("plan-table").tBodies[0].innerHTML = entries.slice(0, body.top).map((e) =>
    `<tr><td>${esc(e.hardware)}</td><td>${e.devices}</td><td>${e.tp}</td><td>${esc(e.quant)}</td><td>${esc(e.kv_format)}</td>` +
    `<td>${e.batch}</td><td data-value="${e.ttft_s}">${secs(e.ttft_s)}</td><td data-value="${e.tpot_s}">${secs(e.tpot_s)}</td>` +
    `<td data-value="${e.usd_per_million_tokens}">${plain(e.usd_per_million_tokens)}</td></tr>`).join("");
  await Plotly.react("plot-plan", traces, clearOfModeBar(layout, "plot-plan", traces), PLOT_CONFIG);
  bump("planned");
}

async function runServe() {
  const asked = requestBody();
  const settings = { ...(asked.settings || {}) };
  delete settings.engine;
  for (const k of ["w_bits", "a_bits", "kv_bits", "flash_attention"]) if (asked[k] !== undefined) settings[k] = asked[k];
  const body = {
    prompt: state.prompt, gen: state.gen, requests: Math.round(Number($("serve-requests").value) || 1), settings,
  };
  for (const k of ["model", "config", "hardware", "custom_hardware"]) if (asked[k] !== undefined) body[k] = asked[k];
  const load = $("serve-load").value, value = Number($("serve-value").value);
  if (load === "sweep") {  // 1, 2, 4, ... below the top, and the top itself
    const top = Math.max(1, Math.round(value));
    body.concurrencies = [];
    for (let c = 1; c < top; c *= 2) body.concurrencies.push(c);
    body.concurrencies.push(top);
    body.figure = true;
  } else if (load === "rate") {
    body.rate = value;
    const cap = $("serve-cap").value.trim();  // a cap on requests in flight: vllm bench serve --max-concurrency
    if (cap !== "") body.concurrency = Math.round(Number(cap));
  } else body.concurrency = Math.round(value);
  if (state.engine) body.engine = state.engine;
  if (asked.quant) body.quant = asked.quant;
  document.body.dataset.serveRequest = JSON.stringify(body);
  $("serve-run").disabled = true;
  const data = await callApi("/api/simulate", body);
  $("serve-run").disabled = false;
  if (data.error) { showError(data.error); return; }
  showError("");
  const swept = load === "sweep";
  $("serve-table").hidden = $("plot-serve").hidden = !swept;
  $("serve-summary").hidden = swept;
  if (swept) {
    $("serve-table").tBodies[0].innerHTML = data.sweep.map((m) =>
      `<tr><td>${m.concurrency}</td><td data-value="${m.output_tokens_per_s_per_device}">${plain(m.output_tokens_per_s_per_device)}</td>` +
      `<td data-value="${m.tokens_per_s_per_user}">${plain(m.tokens_per_s_per_user)}</td><td data-value="${m.ttft.p50}">${secs(m.ttft.p50)}</td>` +
      `<td data-value="${m.tpot.p50}">${secs(m.tpot.p50)}</td><td>${m.saturated ? "no" : "yes"}</td></tr>`).join("");
    await Plotly.react("plot-serve", data.figure.data, clearOfModeBar(data.figure.layout, "plot-serve", data.figure.data), PLOT_CONFIG);
    bump("served");
    return;
  }
  const m = data.summary;
  const card = (id, label, value, text) =>
    `<div class="figure"><span class="label">${label}</span><span id="${id}" class="value" data-value="${value}">${text}</span></div>`;
  $("serve-summary").innerHTML = [
    card("serve-throughput", "output tokens/s", m.output_tokens_per_s, plain(m.output_tokens_per_s)),
    card("serve-ttft-p50", "TTFT p50", m.ttft.p50, secs(m.ttft.p50)),
    card("serve-ttft-p99", "TTFT p99", m.ttft.p99, secs(m.ttft.p99)),
    card("serve-tpot-p50", "TPOT p50", m.tpot.p50, secs(m.tpot.p50)),
    card("serve-tpot-p99", "TPOT p99", m.tpot.p99, secs(m.tpot.p99)),
    card("serve-saturated", "keeps up", String(!m.saturated), m.saturated ? "no: the queue grows" : "yes"),
  ].join("");
  bump("served");
}

// --- exports ---------------------------------------------------------------------------------
function download(name, text, type) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

// --- wiring ----------------------------------------------------------------------------------
function wire() {
  $("model").addEventListener("change", () => { state.model = $("model").value.trim(); schedule(0); });
  $("hardware").addEventListener("change", () => { state.hardware = $("hardware").value.trim(); schedule(0); });
  $("config-apply").addEventListener("click", () => {
    try {
      state.config = JSON.parse($("config-text").value);
    } catch (err) {
      $("error").textContent = "config.json is not valid JSON: " + err.message;
      $("error").hidden = false;
      return;
    }
    showState();
    schedule(0);
  });
  $("config-clear").addEventListener("click", () => { state.config = null; showState(); schedule(0); });
  const readCustom = () => {
    state.custom = $("hw-custom").checked ? Object.fromEntries(CUSTOM_FIELDS.map((f) => [f, $(f.replace("_", "-")).value])) : null;
    $("hardware").disabled = !!state.custom;
    schedule();
  };
  $("hw-custom").addEventListener("change", readCustom);
  for (const f of CUSTOM_FIELDS) $(f.replace("_", "-")).addEventListener("input", () => { if (state.custom) readCustom(); });
  for (const name of ["batch", "prompt", "gen"]) {
    $(name + "-range").addEventListener("input", () => {
      state[name] = 2 ** Number($(name + "-range").value);
      $(name).value = state[name];
      schedule();
    });
    $(name).addEventListener("change", () => {
      state[name] = Math.max(1, Math.round(Number($(name).value) || 1));
      log2Slider(name, state[name]);
      schedule(0);
    });
  }
  for (const [id, key] of [["w-bits", "w"], ["a-bits", "a"], ["kv-bits", "kv"]]) {
    $(id).addEventListener("change", () => { state[key] = Number($(id).value); schedule(0); });
  }
  $("flash").addEventListener("change", () => { state.fa = $("flash").checked ? 1 : 0; schedule(0); });
  $("engine").addEventListener("change", () => { state.engine = $("engine").value; schedule(0); });
  for (const [id, key] of [["quant", "quant"], ["kv-format", "kvf"], ["spec", "spec"]]) {
    $(id).addEventListener("change", () => { state[key] = $(id).value; showState(); schedule(0); });
  }
  for (const k of PARALLEL) {
    $(k).addEventListener("change", () => {
      state[k] = Math.max(1, Math.round(Number($(k).value) || 1));
      $(k).value = state[k];
      schedule(0);
    });
  }
  for (const k of Object.keys(OFFLOAD)) {
    $(k).addEventListener("change", () => { state[k] = Number($(k).value) || 0; schedule(0); });
  }
  $("fit-options").addEventListener("click", (ev) => {
    const change = ev.target.closest("button")?.dataset.change;
    if (!change) return;
    for (const [key, value] of Object.entries(JSON.parse(change))) state[FIT_CHANGES[key]] = value;
    showState();
    schedule(0);
  });
  $("block-phase").addEventListener("change", async () => {
    state.phase = $("block-phase").value;
    writeUrl();
    await drawBlock();
    findOps();
  });
  $("block-group").addEventListener("change", () => { state.group = $("block-group").value; schedule(0); });
  $("op-search").addEventListener("input", findOps);
  $("op-table").tHead.addEventListener("click", (ev) => {
    const key = ev.target.closest("th")?.dataset.key;
    if (!key) return;
    sortDir = key === sortKey ? -sortDir : -1;
    sortKey = key;
    drawTable();
    findOps();
  });
  for (const b of document.querySelectorAll("#modes button")) {
    b.addEventListener("click", () => { state.mode = b.dataset.mode; writeUrl(); showMode(); if (state.mode === "compare") runCompare(); });
  }
  $("compare-add").addEventListener("click", () => { state.pins.push(requestBody()); runCompare(); });
  $("compare-clear").addEventListener("click", () => { state.pins = []; runCompare(); });
  $("compare-pins").addEventListener("click", (ev) => {
    const i = ev.target.closest("button")?.dataset.unpin;
    if (i === undefined) return;
    state.pins.splice(Number(i), 1);
    runCompare();
  });
  $("plan-run").addEventListener("click", runPlan);
  $("serve-run").addEventListener("click", runServe);
  $("copy-link").addEventListener("click", () => navigator.clipboard?.writeText(location.href));
  $("export-json").addEventListener("click", () => {
    if (report) download("rooflens-report.json", JSON.stringify(report, null, 2), "application/json");
  });
  $("export-csv").addEventListener("click", async () => {
    inflight = new AbortController();
    const data = await post({ ...requestBody(), format: "csv" });
    if (data.text) download("rooflens-ops.csv", data.text, "text/csv");
  });
}

async function loadCatalogs() {
  const [models, hardware, engines, formats] = await Promise.all([
    fetch("/api/models").then((r) => r.json()), fetch("/api/hardware").then((r) => r.json()),
    fetch("/api/engines").then((r) => r.json()), fetch("/api/formats").then((r) => r.json()),
  ]);
  $("quant").innerHTML = `<option value="">by bit widths below</option>` + formats.weights.map((f) =>
    `<option value="${esc(f.name)}" title="${esc(f.description)}">${esc(f.name)} (${f.bits_per_value.toFixed(2)} bits/weight)</option>`).join("");
  state.planFormats = formats.plan;
  $("kv-format").innerHTML = `<option value="">by bit width below</option>` + formats.kv.map((k) =>
    `<option value="${esc(k.name)}" title="${esc(k.description)}">${esc(k.name)}</option>`).join("");
  $("spec-drafts").innerHTML = models.map((m) =>
    `<option value="draft:${esc(m.name)}">${esc(m.name)}</option>`).join("");
  showState();
  $("engine").innerHTML = `<option value="">the device's default</option>` + engines.map((e) =>
    `<option value="${esc(e.name)}">${esc(e.display_name)}</option>`).join("");
  $("engine").value = state.engine;
  $("model-list").innerHTML = models.map((m) =>
    `<option value="${esc(m.name)}">${(m.params / 1e9).toFixed(1)} B, ${esc(m.model_type)}</option>`).join("");
  $("hardware-list").innerHTML = hardware.map((h) =>
    `<option value="${esc(h.name)}">${esc(h.display_name)}</option>`).join("");
}

readUrl();
showState();
wire();
showMode();
if (state.mode === "compare") runCompare();
loadCatalogs().then(update);
