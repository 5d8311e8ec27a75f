// starter-serve's page. It talks to the service only through its public HTTP API:
//   GET  /models, /models/{name}/data          what is served; a sample of training data
//   POST /predict/digits/image?model=...       the drawing, uploaded as a PNG (the server does
//                                              all preprocessing and returns what the model saw)
//   POST /predict/points, /predict/curve       JSON
// No build step, no libraries. Colours come from the CSS variables in style.css.
"use strict";

const $ = (id) => document.getElementById(id);
const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
const fmt = (v, digits = 2) => (v < 0 ? "−" : "") + Math.abs(v).toFixed(digits);
const pct = (p) => (100 * p).toFixed(1) + " %";

// ---------------------------------------------------------------- talking to the service

class ServiceError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status; // 0: no answer at all
  }
}

// Where the service wants an API key for predictions (SERVING_API_KEYS): asked for on a 401/403,
// kept for this tab only, sent as a Bearer token.
let apiKey = sessionStorage.getItem("apiKey") || "";

/**
 * fetch JSON from the service; every failure becomes a ServiceError with a readable message.
 * Answers with a status in `accept` (e.g. /readyz's 503) are returned like successes.
 */
async function api(path, { json, form, accept = [] } = {}) {
  const init = { method: "GET", headers: { Accept: "application/json" } };
  if (apiKey) init.headers.Authorization = `Bearer ${apiKey}`;
  if (json !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.method = "POST";
    init.body = form;
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    service.unreachable();
    throw new ServiceError(
      `The service is unreachable: no answer from ${location.origin}. Is it running?`, 0);
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON (e.g. a proxy's HTML error page): reported below
  }
  service.reachable();
  if (res.status === 401 || res.status === 403) $("key-form").hidden = false;
  if (!res.ok && !accept.includes(res.status)) {
    const why = body && typeof body.error === "string" ? body.error : res.statusText || "no details";
    throw new ServiceError(`The service answered ${res.status}: ${why}`, res.status);
  }
  if (body === null) throw new ServiceError(`The service answered ${res.status} without JSON`, res.status);
  return body;
}

/** A section's state for people (the error box, aria-busy) and for tests (data-state). */
function section(id) {
  const el = $(id);
  const error = $(`${id}-error`);
  return {
    idle() {
      delete el.dataset.state;
      el.removeAttribute("aria-busy");
      error.hidden = true;
    },
    busy() { el.dataset.state = "busy"; el.setAttribute("aria-busy", "true"); },
    done() {
      el.dataset.state = "done";
      el.removeAttribute("aria-busy");
      error.hidden = true;
      error.textContent = "";
    },
    fail(err) {
      el.dataset.state = "error";
      el.removeAttribute("aria-busy");
      error.textContent = err instanceof ServiceError ? err.message : `Something went wrong: ${err}`;
      error.hidden = false;
    },
  };
}

// ---------------------------------------------------------------- the models and the banner

const models = {}; // name -> the /models entry
let failed = {}; // name -> why it did not load

const service = {
  banner: $("service"),
  down: false,
  show(text, kind, retry) {
    this.banner.className = `banner ${kind}`;
    this.banner.textContent = text;
    if (retry) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = "Retry";
      b.addEventListener("click", start);
      this.banner.append(b);
    }
  },
  unreachable() {
    this.down = true;
    this.show(`The service at ${location.origin} is unreachable. Is it running?`, "bad", true);
  },
  reachable() {
    if (this.down) {
      this.down = false;
      this.describe();
    }
  },
  describe() {
    const served = Object.keys(models).sort();
    const bad = Object.entries(failed).map(([name, why]) => `${name} (${why})`);
    if (bad.length) this.show(`Not loaded: ${bad.join("; ")}. Serving: ${served.join(", ") || "nothing"}.`, "bad", true);
    else this.show(`Connected: serving ${served.join(", ")}.`, "ok");
  },
};

function describeModel(name) {
  const m = models[name];
  if (m) return `model ${m.name} · version ${m.version} · ${m.backend} on ${m.device}`;
  if (failed[name]) return `model ${name} did not load: ${failed[name]}`;
  return `model ${name} is not served`;
}

function renderMeta() {
  const names = { digits: $("digit-model").value, points: $("point-model").value, curve: "curve" };
  for (const el of document.querySelectorAll("[data-meta-for]")) {
    el.textContent = describeModel(names[el.dataset.metaFor]);
  }
}

/** Answers carry the version that computed them: keep the model line honest across reloads. */
function noteVersion(answer) {
  const m = models[answer.model];
  if (m && m.version !== answer.version) {
    m.version = answer.version;
    renderMeta();
  }
}

async function loadModels() {
  const body = await api("/models");
  for (const key of Object.keys(models)) delete models[key];
  for (const m of body.models) models[m.name] = m;
  failed = body.failed || {};
  for (const select of document.querySelectorAll("select[data-family]")) fillChoices(select);
  renderMeta();
  const health = await api("/readyz", { accept: [503] });
  const loading = Object.keys(health.models || {}).filter((m) => health.models[m].state === "loading");
  if (loading.length) {
    service.show(`The service is still loading: ${loading.join(", ")}…`, "");
    await new Promise((r) => setTimeout(r, 1000));
    return loadModels();
  }
  service.describe();
}

/** A model choice lists every served model of its family (the page knows no names): the ones
 * the page ships with keep their descriptions, new ones show their test accuracy. */
function fillChoices(select) {
  const family = select.dataset.family;
  const served = Object.values(models).filter((m) => m.family === family);
  if (!served.length) return; // nothing listed (yet): keep what is there
  const known = Object.fromEntries([...select.options].map((o) => [o.value, o.textContent]));
  const current = select.value;
  select.replaceChildren(...served.map((m) => {
    const acc = m.metrics && m.metrics.accuracy;
    const text = known[m.name] || (acc ? `${m.name} (${pct(acc)} on test)` : m.name);
    return new Option(text, m.name, false, m.name === current);
  }));
  if (!served.some((m) => m.name === current)) select.selectedIndex = 0;
}

// ---------------------------------------------------------------- digits

const digits = section("digits");
const pad = $("pad");
const padCtx = pad.getContext("2d");
const STROKE = pad.width / 14; // thick, like a pen on MNIST's 28 px field
let source = null; // null (empty), "pad", or the uploaded File
let stroke = null; // { id, x, y } while a pointer draws
let digitSeq = 0; // answers to older requests are dropped

function clearPad() {
  padCtx.fillStyle = "#000";
  padCtx.fillRect(0, 0, pad.width, pad.height);
}

function padPoint(e) {
  const r = pad.getBoundingClientRect();
  return { x: ((e.clientX - r.left) * pad.width) / r.width, y: ((e.clientY - r.top) * pad.height) / r.height };
}

function drawTo(p) {
  padCtx.strokeStyle = "#fff";
  padCtx.lineWidth = STROKE;
  padCtx.lineCap = "round";
  padCtx.lineJoin = "round";
  padCtx.beginPath();
  padCtx.moveTo(stroke.x, stroke.y);
  padCtx.lineTo(p.x, p.y);
  padCtx.stroke();
  stroke.x = p.x;
  stroke.y = p.y;
}

pad.addEventListener("pointerdown", (e) => {
  if (stroke || (e.pointerType === "mouse" && e.button !== 0)) return;
  e.preventDefault();
  if (source !== "pad") {
    clearPad(); // drawing after an upload starts a new drawing
    $("digit-file").value = "";
  }
  source = "pad";
  pad.setPointerCapture(e.pointerId);
  stroke = { id: e.pointerId, ...padPoint(e) };
  drawTo(padPoint(e)); // a dot for a tap
});

pad.addEventListener("pointermove", (e) => {
  if (!stroke || e.pointerId !== stroke.id) return;
  const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
  for (const ev of events.length ? events : [e]) drawTo(padPoint(ev));
});

function endStroke(e) {
  if (!stroke || e.pointerId !== stroke.id) return;
  stroke = null;
  predictDigit();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

async function predictDigit() {
  if (!source) return;
  const seq = ++digitSeq;
  const model = $("digit-model").value;
  digits.busy();
  const file = source === "pad" ? await new Promise((r) => pad.toBlob(r, "image/png")) : source;
  const form = new FormData();
  form.append("file", file, file.name || "drawing.png");
  try {
    const answer = await api(`/predict/digits/image?model=${encodeURIComponent(model)}`, { form });
    if (seq !== digitSeq) return;
    showDigit(answer);
    noteVersion(answer);
    digits.done();
  } catch (err) {
    if (seq !== digitSeq) return;
    showDigit(null);
    digits.fail(err);
  }
}

// Ten bars, built once.
const bars = [];
for (let d = 0; d < 10; d++) {
  const li = document.createElement("li");
  li.innerHTML = `<span class="pct"></span><span class="track"><span class="fill"></span></span><span class="digit">${d}</span>`;
  $("bars").append(li);
  bars.push(li);
}

const seen = $("seen").getContext("2d");

function showDigit(answer) {
  const p = answer && answer.predictions[0];
  $("digit-answer").textContent = p ? String(p.digit) : "–";
  bars.forEach((li, d) => {
    const prob = p ? p.probabilities[d] : 0;
    li.querySelector(".fill").style.height = `${(100 * prob).toFixed(1)}%`;
    li.querySelector(".pct").textContent = p ? `${Math.round(100 * prob)}%` : "";
    li.title = p ? `${d}: ${pct(prob)}` : "";
    li.classList.toggle("top", Boolean(p) && d === p.digit);
    li.setAttribute("aria-label", p ? `${d}: ${pct(prob)}` : `${d}`);
  });
  const img = seen.createImageData(28, 28);
  if (answer) {
    answer.image.flat().forEach((v, i) => {
      img.data.set([v, v, v, 255], 4 * i);
    });
  }
  seen.putImageData(img, 0, 0);
}

$("clear-digit").addEventListener("click", () => {
  digitSeq++;
  source = null;
  clearPad();
  $("digit-file").value = "";
  showDigit(null);
  digits.idle();
});

$("digit-model").addEventListener("change", () => {
  renderMeta();
  predictDigit();
});

$("digit-file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (!file) return;
  source = file;
  clearPad();
  try { // a preview on the pad; the file itself is what is uploaded
    const bitmap = await createImageBitmap(file);
    const s = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
    const w = bitmap.width * s, h = bitmap.height * s;
    padCtx.drawImage(bitmap, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
  } catch {
    // the browser cannot show it; the service will say what is wrong with it
  }
  predictDigit();
});

// ---------------------------------------------------------------- shared plotting helpers

/** Size a canvas's bitmap to its CSS box and the screen's pixel density; draw in CSS pixels. */
function fitCanvas(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { ctx, w, h };
}

function rgb(hex) {
  const n = parseInt(hex.replace("#", ""), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

// ---------------------------------------------------------------- points

const pointsUi = section("points");
const plane = $("plane");
const EXTENT = Number(plane.dataset.extent) || 5; // the plane shows [-EXTENT, EXTENT] squared
const GRID = 32; // GRID x GRID region samples: 1024 points, one request
let regions = null; // Float32Array: probability of class 1 at each grid cell, rows from the top
const points = []; // { x, y, label, p }
const cross = { x: 0, y: 0, shown: false }; // the keyboard's cursor

const toPlane = (x, y, w, h) => [((x + EXTENT) / (2 * EXTENT)) * w, ((EXTENT - y) / (2 * EXTENT)) * h];
const fromPlane = (px, py, w, h) => [(px / w) * 2 * EXTENT - EXTENT, EXTENT - (py / h) * 2 * EXTENT];

function labelName(label) {
  const m = models[$("point-model").value];
  const names = m && m.labels;
  return (names && names[label]) || `class ${label}`;
}

async function loadRegions() {
  const grid = [];
  const step = (2 * EXTENT) / GRID;
  for (let row = 0; row < GRID; row++) {
    for (let col = 0; col < GRID; col++) grid.push([-EXTENT + (col + 0.5) * step, EXTENT - (row + 0.5) * step]);
  }
  pointsUi.busy();
  try {
    const answer = await api("/predict/points", { json: { points: grid, model: $("point-model").value } });
    regions = Float32Array.from(answer.predictions, (p) => p.probabilities[1]);
    noteVersion(answer);
    pointsUi.done();
  } catch (err) {
    pointsUi.fail(err);
  }
  drawPlane();
}

function drawPlane() {
  const { ctx, w, h } = fitCanvas(plane);
  const c0 = rgb(cssVar("--class0")), c1 = rgb(cssVar("--class1"));
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  if (regions) {
    // Paint one pixel per grid cell, then let the browser scale it up smoothly.
    const tiles = new OffscreenCanvas(GRID, GRID);
    const tctx = tiles.getContext("2d");
    const img = tctx.createImageData(GRID, GRID);
    regions.forEach((p1, i) => {
      const mixed = c0.map((v, k) => (1 - p1) * v + p1 * c1[k]);
      img.data.set([...mixed.map((v) => 255 - 0.35 * (255 - v)), 255], 4 * i); // a light tint
    });
    tctx.putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(tiles, 0, 0, w, h);
  }
  // Grid lines at every integer, axes through the origin, labels at the edges.
  ctx.lineWidth = 1;
  for (let v = -EXTENT; v <= EXTENT; v++) {
    const [px, py] = toPlane(v, v, w, h);
    ctx.strokeStyle = v === 0 ? "rgba(0,0,0,0.45)" : "rgba(0,0,0,0.08)";
    ctx.beginPath();
    ctx.moveTo(Math.round(px) + 0.5, 0);
    ctx.lineTo(Math.round(px) + 0.5, h);
    ctx.moveTo(0, Math.round(py) + 0.5);
    ctx.lineTo(w, Math.round(py) + 0.5);
    ctx.stroke();
  }
  ctx.fillStyle = "rgba(0,0,0,0.6)";
  ctx.font = "11px system-ui, sans-serif";
  const [ox, oy] = toPlane(0, 0, w, h);
  ctx.textBaseline = "top";
  for (const v of [-4, -2, 2, 4]) {
    const [px, py] = toPlane(v, v, w, h);
    ctx.textAlign = "center";
    ctx.fillText(String(v).replace("-", "−"), px, oy + 3);
    ctx.textAlign = "left";
    ctx.fillText(String(v).replace("-", "−"), ox + 4, py - 6);
  }
  for (const pt of points) drawPoint(ctx, ...toPlane(pt.x, pt.y, w, h), pt.label === 0 ? cssVar("--class0") : cssVar("--class1"), pt.label);
  if (cross.shown) {
    const [px, py] = toPlane(cross.x, cross.y, w, h);
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(px - 9, py);
    ctx.lineTo(px + 9, py);
    ctx.moveTo(px, py - 9);
    ctx.lineTo(px, py + 9);
    ctx.stroke();
  }
}

/** Class 0 a circle, class 1 a square: the shape tells them apart without colour too. */
function drawPoint(ctx, px, py, colour, label) {
  const r = 6;
  ctx.beginPath();
  if (label === 0) ctx.arc(px, py, r, 0, 2 * Math.PI);
  else ctx.rect(px - r, py - r, 2 * r, 2 * r);
  ctx.fillStyle = colour;
  ctx.fill();
  ctx.lineWidth = 2;
  ctx.strokeStyle = "#fff";
  ctx.stroke();
  ctx.lineWidth = 1;
  ctx.strokeStyle = "rgba(0,0,0,0.55)";
  ctx.beginPath();
  if (label === 0) ctx.arc(px, py, r + 1.5, 0, 2 * Math.PI);
  else ctx.rect(px - r - 1.5, py - r - 1.5, 2 * r + 3, 2 * r + 3);
  ctx.stroke();
}

async function addPoint(x, y) {
  pointsUi.busy();
  try {
    const answer = await api("/predict/points", { json: { points: [[x, y]], model: $("point-model").value } });
    const { label, probabilities } = answer.predictions[0];
    const pt = { x, y, label, p: probabilities[label] };
    points.push(pt);
    noteVersion(answer);
    const text = `(${fmt(x)}, ${fmt(y)}) → ${labelName(label)}, ${pct(pt.p)}`;
    $("point-readout").textContent = `Added ${text}.`;
    const li = document.createElement("li");
    li.textContent = text;
    li.dataset.label = String(label);
    $("point-list").append(li);
    li.scrollIntoView({ block: "nearest" });
    pointsUi.done();
    if (!regions) loadRegions(); // the shading failed before: try again
  } catch (err) {
    pointsUi.fail(err);
  }
  drawPlane();
}

plane.addEventListener("click", (e) => {
  const [x, y] = fromPlane(e.offsetX, e.offsetY, plane.clientWidth, plane.clientHeight);
  addPoint(Math.round(x * 100) / 100, Math.round(y * 100) / 100);
});

plane.addEventListener("keydown", (e) => {
  const step = e.shiftKey ? 1 : 0.25;
  const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
  if (moves[e.key]) {
    const clamp = (v) => Math.max(-EXTENT, Math.min(EXTENT, v));
    cross.x = clamp(cross.x + moves[e.key][0]);
    cross.y = clamp(cross.y + moves[e.key][1]);
    $("point-readout").textContent = `Cross at (${fmt(cross.x)}, ${fmt(cross.y)}); Enter adds a point.`;
  } else if (e.key === "Enter" || e.key === " ") {
    addPoint(cross.x, cross.y);
  } else {
    return;
  }
  e.preventDefault();
  cross.shown = true;
  drawPlane();
});
plane.addEventListener("focus", () => { cross.shown = plane.matches(":focus-visible"); drawPlane(); });
plane.addEventListener("blur", () => { cross.shown = false; drawPlane(); });

$("point-model").addEventListener("change", () => {
  points.length = 0; // they were classified by the other model
  $("point-list").replaceChildren();
  $("point-readout").textContent = "No points yet.";
  renderMeta();
  loadRegions();
});

$("clear-points").addEventListener("click", () => {
  points.length = 0;
  $("point-list").replaceChildren();
  $("point-readout").textContent = "No points yet.";
  drawPlane();
});

// ---------------------------------------------------------------- curve

const curveUi = section("curve");
const plot = $("plot");
const CURVE_N = 201; // x = -1, -0.99, ..., 1
const curve = { x: [], y: [], sample: null, hover: -1 };
const PAD = { left: 40, right: 12, top: 12, bottom: 26 };

async function loadCurve() {
  curve.x = Array.from({ length: CURVE_N }, (_, i) => -1 + (2 * i) / (CURVE_N - 1));
  curveUi.busy();
  const errors = [];
  const [line, sample] = await Promise.allSettled([
    api("/predict/curve", { json: { x: curve.x } }),
    api("/models/curve/data?n=200"),
  ]);
  if (line.status === "fulfilled") {
    curve.y = line.value.y;
    noteVersion(line.value);
  } else {
    curve.y = [];
    errors.push(line.reason);
  }
  if (sample.status === "fulfilled") curve.sample = sample.value;
  else errors.push(new ServiceError(`Training data unavailable. ${sample.reason.message}`, sample.reason.status));
  if (errors.length) curveUi.fail(errors[0]);
  else curveUi.done();
  drawPlot();
}

/** Round ticks (steps of 1, 2 or 5 x 10^k), about `n` over [lo, hi], and the decimals they need. */
function ticks(lo, hi, n) {
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const values = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) values.push(Math.abs(v) < 1e-12 ? 0 : v);
  return { values, decimals: Math.max(0, -Math.floor(Math.log10(step))) };
}

function plotScale(w, h) {
  const ys = [...curve.y, ...(curve.sample ? curve.sample.y : [])];
  let lo = ys.length ? Math.min(...ys) : 0, hi = ys.length ? Math.max(...ys) : 1;
  if (hi - lo < 1e-6) { lo -= 0.5; hi += 0.5; }
  const margin = 0.06 * (hi - lo);
  lo -= margin;
  hi += margin;
  return {
    lo, hi,
    px: (x) => PAD.left + ((x + 1) / 2) * (w - PAD.left - PAD.right),
    py: (y) => PAD.top + ((hi - y) / (hi - lo)) * (h - PAD.top - PAD.bottom),
    x: (px) => ((px - PAD.left) / (w - PAD.left - PAD.right)) * 2 - 1,
  };
}

function drawPlot() {
  const { ctx, w, h } = fitCanvas(plot);
  const s = plotScale(w, h);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  ctx.font = "11px system-ui, sans-serif";
  ctx.lineWidth = 1;
  // Axes and ticks.
  ctx.fillStyle = "rgba(0,0,0,0.6)";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const v of [-1, -0.5, 0, 0.5, 1]) {
    ctx.strokeStyle = "rgba(0,0,0,0.08)";
    ctx.beginPath();
    ctx.moveTo(Math.round(s.px(v)) + 0.5, PAD.top);
    ctx.lineTo(Math.round(s.px(v)) + 0.5, h - PAD.bottom);
    ctx.stroke();
    ctx.fillText(fmt(v, 1), s.px(v), h - PAD.bottom + 5);
  }
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const yTicks = ticks(s.lo, s.hi, 5);
  for (const v of yTicks.values) {
    ctx.strokeStyle = "rgba(0,0,0,0.08)";
    ctx.beginPath();
    ctx.moveTo(PAD.left, Math.round(s.py(v)) + 0.5);
    ctx.lineTo(w - PAD.right, Math.round(s.py(v)) + 0.5);
    ctx.stroke();
    ctx.fillText(fmt(v, yTicks.decimals), PAD.left - 5, s.py(v));
  }
  ctx.strokeStyle = "rgba(0,0,0,0.45)";
  ctx.strokeRect(PAD.left + 0.5, PAD.top + 0.5, w - PAD.left - PAD.right - 1, h - PAD.top - PAD.bottom - 1);
  // Training data, then the model's curve over it.
  if (curve.sample) {
    ctx.fillStyle = cssVar("--data");
    ctx.globalAlpha = 0.55;
    curve.sample.x.forEach((x, i) => {
      ctx.beginPath();
      ctx.arc(s.px(x), s.py(curve.sample.y[i]), 2.5, 0, 2 * Math.PI);
      ctx.fill();
    });
    ctx.globalAlpha = 1;
  }
  if (curve.y.length) {
    ctx.strokeStyle = cssVar("--curve");
    ctx.lineWidth = 2.5;
    ctx.lineJoin = "round";
    ctx.beginPath();
    curve.x.forEach((x, i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, s.px(x), s.py(curve.y[i])));
    ctx.stroke();
  }
  if (curve.hover >= 0 && curve.y.length) drawHover(ctx, s, w);
}

function drawHover(ctx, s, w) {
  const x = curve.x[curve.hover], y = curve.y[curve.hover];
  const px = s.px(x), py = s.py(y);
  ctx.strokeStyle = "rgba(0,0,0,0.35)";
  ctx.lineWidth = 1;
  ctx.setLineDash([4, 3]);
  ctx.beginPath();
  ctx.moveTo(Math.round(px) + 0.5, PAD.top);
  ctx.lineTo(Math.round(px) + 0.5, s.py(s.lo));
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = cssVar("--curve");
  ctx.beginPath();
  ctx.arc(px, py, 4.5, 0, 2 * Math.PI);
  ctx.fill();
  const label = `x ${fmt(x)}  y ${fmt(y, 3)}`;
  ctx.font = "12px system-ui, sans-serif";
  const tw = ctx.measureText(label).width + 10;
  const bx = Math.min(Math.max(px - tw / 2, PAD.left), w - PAD.right - tw);
  const by = py - 30 < PAD.top ? py + 10 : py - 30;
  ctx.fillStyle = "rgba(29,35,48,0.9)";
  ctx.fillRect(bx, by, tw, 20);
  ctx.fillStyle = "#fff";
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  ctx.fillText(label, bx + 5, by + 10);
}

function hoverAt(index) {
  if (!curve.y.length) return;
  curve.hover = Math.max(0, Math.min(CURVE_N - 1, index));
  const x = curve.x[curve.hover], y = curve.y[curve.hover];
  $("curve-readout").textContent = `x = ${fmt(x)}: the model says y = ${fmt(y, 3)}`;
  drawPlot();
}

function hoverPointer(e) {
  const x = plotScale(plot.clientWidth, plot.clientHeight).x(e.offsetX);
  hoverAt(Math.round(((x + 1) / 2) * (CURVE_N - 1)));
}
plot.addEventListener("pointermove", hoverPointer);
plot.addEventListener("pointerdown", hoverPointer);
plot.addEventListener("pointerleave", () => {
  if (document.activeElement === plot) return;
  curve.hover = -1;
  drawPlot();
});
plot.addEventListener("keydown", (e) => {
  const step = e.shiftKey ? 10 : 1;
  const start = curve.hover < 0 ? (CURVE_N - 1) / 2 : curve.hover;
  const to = { ArrowLeft: start - step, ArrowRight: start + step, Home: 0, End: CURVE_N - 1 }[e.key];
  if (to === undefined) return;
  e.preventDefault();
  hoverAt(to);
});
plot.addEventListener("blur", () => { curve.hover = -1; drawPlot(); });

// ---------------------------------------------------------------- start

$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  apiKey = $("api-key").value.trim();
  sessionStorage.setItem("apiKey", apiKey);
  start();
  predictDigit();
});
if (apiKey) $("key-form").hidden = false;

new ResizeObserver(() => { drawPlane(); drawPlot(); }).observe(document.querySelector("main"));

async function start() {
  service.show("Contacting the service…", "");
  try {
    await loadModels();
  } catch (err) {
    if (err.status !== 0) service.show(`Cannot list the models. ${err.message}`, "bad", true);
    renderMeta();
  }
  await Promise.all([loadRegions(), loadCurve()]);
}

clearPad();
showDigit(null);
drawPlane();
drawPlot();
start();
