// blobsift labelling page: plain JS, no build step, no network beyond this server.
// Every piece of text from the server goes into the page as text (textContent or text
// nodes), never as HTML; the server's Content-Security-Policy forbids inline script.
"use strict";

const $ = (id) => document.getElementById(id);
const store = window.localStorage;
const PREFETCH = 8;        // crops kept decoded ahead of the current one
const GRID_PAGE = 48;      // thumbnails per grid page
const PHASE_NAMES = new Map([["siamese", "Phase 1 (Siamese gallery)"], ["cnn", "Phase 2 (direct CNN)"]]);
const phaseName = (phase) => PHASE_NAMES.get(phase) || String(phase ?? "");
const SVG = "http://www.w3.org/2000/svg";

// This tab's session: its labels are its own to undo (kept across reloads of the tab).
const tabSession = (() => {
  let id = window.sessionStorage.getItem("blobsift.session");
  if (!id) {
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    window.sessionStorage.setItem("blobsift.session", id);
  }
  return id;
})();

const state = {
  view: store.getItem("blobsift.view") || "label",
  order: store.getItem("blobsift.order") || "useful",
  high: Number(store.getItem("blobsift.high") || 99.5),
  zoom: 1,
  current: null,           // the candidate shown in the label view
  queue: [],               // prefetched candidates after it
  filling: null,           // the queue request in flight
  actions: Promise.resolve(), // labels are sent one after another, in key order
  recent: [],
  done: new Set(),         // ids labelled from this page (until undone)
  grid: [], gridCursor: 0,
  status: null,
  epochs: [],
};

// ---------------------------------------------------------------- helpers
async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(data.detail ? String(data.detail) : `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

let toastTimer = null;
function toast(text, error = false) {
  const box = $("toast");
  box.textContent = text;
  box.className = "show" + (error ? " error" : "");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.className = ""; }, error ? 4000 : 1800);
}

// Image URLs carry the server's session: cacheable, and never stale after a restart.
const session = () => (state.status ? state.status.session : "");
// The crop with ticks around its centre: which spot is asked about (grid and single view).
const cropUrl = (id) => `/api/crop/${id}.png?high=${state.high}&mark=true&s=${session()}`;
const contextUrl = (id) => `/api/context/${id}.png?s=${session()}`;
const fmt = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
// DOM builders: strings among the children become text nodes, never markup.
const el = (tag, props = {}, children = []) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
};
const svgEl = (tag, attributes = {}, children = []) => {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  for (const child of children) node.append(child);
  return node;
};
const bold = (text, className = "") => el("b", { className, textContent: String(text) });
const kbd = (key) => el("kbd", { textContent: key });
const empty = (text) => el("div", { className: "empty", textContent: text });
const bar = (className, share) => {
  const node = el("i");
  node.style.width = `${share}%`;
  return el("div", { className }, [node]);
};

function preload(item) {
  // Decode the crop and its context now, so showing them later takes no visible time.
  item.images = [cropUrl(item.id), contextUrl(item.id)].map((src) => {
    const image = new Image();
    image.src = src;
    return image.decode().catch(() => null);
  });
  if (state.status && state.status.gallery) {
    item.details = api(`/api/candidate/${item.id}`).catch(() => null);
  }
  return item;
}

// ---------------------------------------------------------------- status and charts
async function refreshStatus() {
  const status = await api("/api/status");
  state.status = status;
  // Crops of several channels show them side by side: the views widen to fit.
  document.body.classList.toggle("channels", status.channels > 1);
  document.documentElement.style.setProperty("--channels", String(status.channels));
  $("project").textContent = status.project;
  const c = status.labels;
  $("counts").replaceChildren(
    el("span", { className: "sig" }, ["signal ", bold(c.signal)]),
    el("span", {}, ["noise ", bold(c.noise)]),
    el("span", { className: "uns" }, ["unsure ", bold(c.unsure)]),
    el("span", {}, ["unlabelled ", bold(status.unlabelled), ` of ${status.candidates}`]),
  );
  renderModel(status);
  renderCurve(status.models);
  if (!status.training.running && status.training.phase === "idle") renderTraining(null);
}

// When Phase 1 can train: once each class has the fewest labels a fit accepts.
function phase1Line(status) {
  const p = status.phase1;
  const name = phaseName("siamese");
  if (p.available) return el("div", { textContent: `${name}: available (${p.signal} signal, ${p.noise} noise)` });
  const short = [["signal", p.signal], ["noise", p.noise]].filter(([, n]) => n < p.min_per_class);
  const need = short.map(([word]) => `${p.min_per_class} ${word}`).join(" and ");
  const have = short.length === 1 ? `${short[0][1]}` : `${p.signal} signal, ${p.noise} noise`;
  return el("div", {}, [`${name} from ${need} labels: `, bold(have), " so far"]);
}

function phase2Line(status) {
  const p = status.phase2;
  return p.labels_to_go > 0
    ? el("div", {}, [`Phase 2 (direct CNN) from ${p.min_labels} signal/noise labels: `,
      bold(p.labels_to_go), ` to go (${p.labels} so far)`])
    : el("div", { textContent: `Phase 2 (direct CNN) available: ${p.min_labels}+ labels (${p.labels} so far)` });
}

function renderModel(status) {
  const m = status.latest;
  if (!m) {
    $("model").replaceChildren(
      el("div", { className: "empty" }, ["no model yet: label a few of each class, then press ", kbd("t")]),
      phase1Line(status),
      phase2Line(status),
    );
    return;
  }
  const f1 = el("div", { id: "model-f1" }, ["F1 "]);
  if (m.estimates) {
    // Too few held-out positives: the server sends no F1, only why.
    f1.append(el("span", { className: "dim", textContent: m.estimates }));
  } else {
    f1.append(el("span", { className: "big", textContent: fmt(m.f1) }));
    if (m.f1_ci) f1.append(" ", el("span", { textContent: `[${fmt(m.f1_ci[0], 2)}, ${fmt(m.f1_ci[1], 2)}]` }));
  }
  const labelled = status.labels.signal + status.labels.noise;
  const since = labelled - m.n_labels;
  $("model").replaceChildren(
    f1,
    el("div", {}, [`model #${m.model_id} · `, bold(phaseName(m.model_phase)),
      ` · ${m.n_labels} labels (${m.n_positive} signal)`]),
    el("div", { className: "dim", textContent: m.phase_reason || "" }),
    phase1Line(status),
    phase2Line(status),
  );
  if (since > 0) $("model").append(el("div", {}, [`${since} new label(s) since · `, kbd("t"), " to retrain"]));
}

// A model's held-out F1 with its interval, or why there is none (too few positives).
function f1Text(m) {
  if (m.estimates) return `F1: ${m.estimates}`;
  const ci = m.f1_ci ? ` [${fmt(m.f1_ci[0], 2)}, ${fmt(m.f1_ci[1], 2)}]` : "";
  return `F1 ${fmt(m.f1)}${ci}`;
}

function svgPath(points) {
  return points.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join("");
}

function renderCurve(models) {
  const svg = $("curve");
  const W = 260, H = 140, L = 28, B = 18, T = 6, R = 8;
  if (!models.length) {
    svg.replaceChildren(svgEl("text", { x: L, y: H / 2 }, ["no model yet"]));
    return;
  }
  const maxN = Math.max(...models.map((m) => Number(m.n_labels))) * 1.1;
  const x = (n) => L + (n / maxN) * (W - L - R);
  const y = (f) => T + (1 - f) * (H - T - B);
  const parts = [
    svgEl("line", { class: "axis", x1: L, y1: y(0), x2: W - R, y2: y(0) }),
    svgEl("line", { class: "axis", x1: L, y1: y(0), x2: L, y2: y(1) }),
    ...[0, 0.5, 1].map((f) => svgEl("text", { x: 4, y: y(f) + 3 }, [f.toFixed(1)])),
    svgEl("text", { x: W - R, y: H - 4, "text-anchor": "end" }, ["labels"]),
  ];
  const points = [];
  for (const m of models) {
    if (m.estimates) {
      // No point for an F1 from too few positives: a grey x on the axis says why.
      const why = svgEl("title", {}, [`#${m.model_id}: ${m.n_labels} labels, ${m.estimates}`]);
      parts.push(svgEl("text", { x: x(m.n_labels), y: y(0) + 3, class: "too-few", "text-anchor": "middle" }, ["×", why]));
      continue;
    }
    if (m.f1 === null) continue;
    if (m.f1_ci) {
      parts.push(svgEl("line", { class: "ci", x1: x(m.n_labels), x2: x(m.n_labels), y1: y(m.f1_ci[0]), y2: y(m.f1_ci[1]) }));
    }
    const title = svgEl("title", {}, [`#${m.model_id}: ${m.n_labels} labels, F1 ${fmt(m.f1)}`]);
    parts.push(svgEl("circle", { cx: x(m.n_labels), cy: y(m.f1), r: 2.5 }, [title]));
    points.push([x(m.n_labels), y(m.f1)]);
  }
  parts.push(svgEl("path", { class: "f1", d: svgPath(points) }));
  svg.replaceChildren(...parts);
}

function renderTraining(event) {
  const box = $("training");
  if (!event) {
    box.replaceChildren("not started · press ", kbd("t"));
    return;
  }
  if (event.phase === "started") {
    state.epochs = [];
    box.replaceChildren(bold("starting…"));
  } else if (event.phase === "progress") {
    const last = state.epochs[state.epochs.length - 1];
    if (last && (last.stage !== event.stage || last.model_phase !== event.model_phase || event.done < last.done)) {
      state.epochs = []; // a new stage (or fold) starts its own curve
    }
    state.epochs.push(event);
    const share = event.total ? (100 * event.done) / event.total : 0;
    box.replaceChildren(
      bold("training"), ` · ${phaseName(event.model_phase)}`,
      el("div", { textContent: `${event.stage} ${event.done}/${event.total}` }),
      bar("progress", share),
      `loss ${fmt(event.loss)}` + (event.val_f1 !== null ? ` · validation F1 ${fmt(event.val_f1)}` : ""),
    );
  } else if (event.phase === "scoring") {
    box.replaceChildren(bold("scoring candidates"), ` with model #${event.model_id}…`);
  } else if (event.phase === "done") {
    box.replaceChildren(bold("done"), ` · model #${event.model_id} · ${f1Text(event)}`);
  } else if (event.phase === "failed") {
    box.replaceChildren(bold("failed", "bad"), `: ${event.error}`);
  }
  renderEpochs();
}

function renderEpochs() {
  const svg = $("epochs");
  const W = 260, H = 110, L = 28, B = 16, T = 6, R = 8;
  const e = state.epochs;
  svg.style.display = e.length ? "block" : "none";
  if (!e.length) return;
  const n = Math.max(e[0].total || e.length, 2);
  const maxLoss = Math.max(...e.map((d) => d.loss || 0), 1e-9);
  const x = (i) => L + ((i - 1) / (n - 1)) * (W - L - R);
  const y = (f) => T + (1 - f) * (H - T - B);
  const f1 = e.filter((d) => d.val_f1 !== null);
  const parts = [
    svgEl("line", { class: "axis", x1: L, y1: y(0), x2: W - R, y2: y(0) }),
    svgEl("text", { x: 4, y: y(1) + 3 }, ["1.0"]),
    svgEl("text", { x: 4, y: y(0) + 3 }, ["0"]),
    svgEl("text", { x: W - R, y: H - 3, "text-anchor": "end" }, [String(e[0].stage)]),
  ];
  if (f1.length) parts.push(svgEl("path", { class: "f1", d: svgPath(f1.map((d) => [x(d.done), y(d.val_f1)])) }));
  parts.push(svgEl("path", { class: "loss", d: svgPath(e.map((d) => [x(d.done), y((d.loss || 0) / maxLoss)])) }));
  if (f1.length) parts.push(svgEl("text", { x: L, y: H - 3, class: "legend-f1" }, ["validation F1"]));
  parts.push(svgEl("text", { x: L + 70, y: H - 3, class: "legend-loss" }, ["loss (scaled)"]));
  svg.replaceChildren(...parts);
}

// A new model scored every candidate: show its score of the crop on screen, requeue the rest.
async function rescore() {
  state.queue = [];
  const shownItem = state.current;
  if (shownItem) {
    const fresh = await api(`/api/candidate/${shownItem.id}`);
    if (state.current === shownItem) await show(preload(fresh));
  }
  fillQueue();
}

// ---------------------------------------------------------------- events from the server
function listen() {
  const source = new EventSource("/api/events");
  let pending = null;
  source.addEventListener("training", (message) => {
    const event = JSON.parse(message.data);
    renderTraining(event);
    if (event.phase === "done") {
      toast(`model #${event.model_id} trained: ${f1Text(event)}`);
      refreshStatus().then(rescore).catch((error) => toast(error.message, true));
    }
    if (event.phase === "failed") toast(`training failed: ${event.error}`, true);
  });
  const later = () => {
    // Update the counts at most twice a second.
    if (!pending) pending = setTimeout(() => { pending = null; refreshStatus(); }, 500);
  };
  source.addEventListener("label", (message) => {
    // Another tab (or this one) labelled: never offer that crop again from the queue.
    const event = JSON.parse(message.data);
    if (event.label !== null) state.queue = state.queue.filter((item) => item.id !== event.id);
    later();
  });
  source.addEventListener("labels", () => {
    // Another process (an import, a notebook) labelled: queue afresh from the store.
    state.queue = [];
    fillQueue();
    later();
  });
}

// ---------------------------------------------------------------- label view
function fillQueue() {
  if (state.filling || state.queue.length >= PREFETCH) return state.filling;
  const exclude = [state.current, ...state.queue].filter(Boolean).map((item) => item.id);
  const order = state.order;
  state.filling = api("/api/queue", { order, n: PREFETCH, exclude })
    .then((data) => {
      if (order !== state.order) return;
      // Requests overlap with labelling: never queue a crop twice or one already labelled.
      const known = new Set([state.current, ...state.queue].filter(Boolean).map((i) => i.id));
      const fresh = data.items.filter((item) => !known.has(item.id) && !state.done.has(item.id));
      state.queue.push(...fresh.map(preload));
    })
    .catch((error) => toast(error.message, true))
    .finally(() => { state.filling = null; });
  return state.filling;
}

async function nextItem() {
  if (!state.queue.length) await fillQueue();
  const item = state.queue.shift() || null;
  fillQueue();
  return item;
}

async function show(item) {
  state.current = item;
  if (!item) {
    store.removeItem("blobsift.current");
    $("crop").removeAttribute("src");
    $("context").removeAttribute("src");
    $("meta").replaceChildren(bold("Nothing left to label in this order."));
    $("score").replaceChildren();
    $("neighbours").replaceChildren();
    return;
  }
  store.setItem("blobsift.current", item.id);
  $("crop").src = cropUrl(item.id);
  $("context").src = contextUrl(item.id);
  $("crop").dataset.id = item.id;
  const meta = [bold(item.image), ` · row ${fmt(item.row, 1)}, col ${fmt(item.col, 1)}`];
  if (item.sigma !== null) meta.push(` · σ ${fmt(item.sigma, 2)}`);
  if (item.score !== null) meta.push(" · detector score ", bold(fmt(item.score, 2)));
  meta.push(" · ", el("span", { className: "dim", textContent: item.id }));
  $("meta").replaceChildren(...meta);
  if (item.proba !== null && item.proba !== undefined) {
    const t = state.status ? state.status.threshold : 0.5;
    const scale = bar("bar", 100 * item.proba);
    const mark = el("em");
    mark.style.left = `${100 * t}%`;
    scale.append(mark);
    $("score").replaceChildren(
      "model: ", bold(item.decision ? "signal" : "noise"), ` (p = ${fmt(item.proba)}, threshold ${fmt(t)})`, scale,
    );
  } else {
    $("score").replaceChildren(el("span", { className: "dim", textContent: "no model score yet" }));
  }
  renderNeighbours(item);
}

async function renderNeighbours(item) {
  const box = $("neighbours");
  $("why").hidden = !(state.status && state.status.gallery);
  if ($("why").hidden) return;
  box.replaceChildren();
  const details = await (item.details || api(`/api/candidate/${item.id}`).catch(() => null));
  if (state.current !== item || !details) return;
  if (!details.neighbours.length) {
    box.replaceChildren(empty("no gallery yet"));
    return;
  }
  for (const n of details.neighbours) {
    box.append(el("figure", { className: `is-${n.label}` }, [
      el("img", { src: `${n.src}?s=${session()}`, alt: n.label }),
      el("figcaption", { textContent: `${n.label} ${fmt(n.similarity, 2)}` }),
    ]));
  }
}

function flash(word) {
  const box = $("crop-box");
  box.className = `crop-box flash-${word}`;
  setTimeout(() => { box.className = "crop-box"; }, 120);
}

function pushRecent(item, word) {
  state.recent.unshift({ item, word });
  state.recent = state.recent.slice(0, 10);
  renderRecent();
}

function renderRecent() {
  const box = $("recent");
  box.replaceChildren(...(state.recent.length ? [] : [empty("nothing yet")]));
  for (const { item, word } of state.recent) {
    box.append(el("figure", { className: `is-${word}` }, [
      el("img", { src: cropUrl(item.id), alt: word }),
      el("figcaption", { textContent: word }),
    ]));
  }
}

function labelCurrent(word) {
  state.actions = state.actions.then(async () => {
    const item = state.current;
    if (!item) return;
    try {
      await api("/api/label", { id: item.id, label: word, session: tabSession }); // committed before we move on
    } catch (error) {
      toast(`not saved: ${error.message}`, true);
      return;
    }
    state.done.add(item.id);
    flash(word);
    pushRecent(item, word);
    await show(await nextItem());
  });
}

function undo() {
  state.actions = state.actions.then(async () => {
    let result;
    try {
      result = await api("/api/undo", { session: tabSession });
    } catch (error) {
      toast(error.message, true);
      return;
    }
    if (result.event_id === null) { toast("nothing to undo"); return; }
    state.done.delete(result.id);
    state.recent = state.recent.filter((r) => r.item.id !== result.id);
    renderRecent();
    toast("undone");
    if (result.id && state.view === "label") {
      if (state.current) state.queue.unshift(state.current);
      state.queue = state.queue.filter((q) => q.id !== result.id);
      await show(preload(await api(`/api/candidate/${result.id}`)));
    }
    if (state.view === "grid") await loadGrid();
  });
}

async function train() {
  try {
    await api("/api/train", {});
    toast("training started; keep labelling");
  } catch (error) {
    toast(error.status === 409 ? "already training" : error.message, error.status !== 409);
  }
}

function setZoom(zoom) {
  state.zoom = Math.min(4, Math.max(1, zoom));
  $("zoom").value = state.zoom;
  $("crop").style.transform = `scale(${state.zoom})`;
}

function setContrast(high) {
  state.high = Math.min(100, Math.max(90, Math.round(high * 10) / 10));
  $("contrast").value = state.high;
  store.setItem("blobsift.high", state.high);
  if (state.current) $("crop").src = cropUrl(state.current.id);
  state.queue.forEach(preload);
}

// ---------------------------------------------------------------- grid view
let gridRequest = 0;
async function loadGrid() {
  const request = ++gridRequest;
  const data = await api("/api/queue", { order: state.order, n: GRID_PAGE, exclude: [] });
  if (request !== gridRequest) return;
  state.grid = data.items.map((item) => ({ item, word: "noise" }));
  state.gridCursor = 0;
  renderGrid();
}

function renderGrid() {
  const box = $("grid");
  box.replaceChildren(...(state.grid.length ? [] : [empty("nothing left to label")]));
  state.grid.forEach((cell, i) => {
    const node = el("div", {
      className: `thumb is-${cell.word}` + (i === state.gridCursor ? " cursor" : ""),
      title: `${cell.item.image} (${fmt(cell.item.row, 0)}, ${fmt(cell.item.col, 0)})`,
    }, [
      el("img", { src: cropUrl(cell.item.id), alt: cell.item.id }),
      el("span", { className: "tag", textContent: cell.word === "noise" ? "" : cell.word }),
      el("div", {
        textContent: cell.item.proba === null ? `score ${fmt(cell.item.score, 1)}` : `p ${fmt(cell.item.proba, 2)}`,
      }),
    ]);
    node.dataset.id = cell.item.id;
    node.addEventListener("click", () => { state.gridCursor = i; toggleGrid("signal"); });
    box.append(node);
  });
}

function toggleGrid(word) {
  const cell = state.grid[state.gridCursor];
  if (!cell) return;
  cell.word = cell.word === word ? "noise" : word;
  renderGrid();
}

function moveGrid(dx, dy) {
  const columns = Math.max(1, Math.round($("grid").clientWidth / 112));
  const next = state.gridCursor + dx + dy * columns;
  if (next >= 0 && next < state.grid.length) state.gridCursor = next;
  renderGrid();
}

function acceptGrid() {
  state.actions = state.actions.then(async () => {
    if (!state.grid.length) return;
    const items = state.grid.map((cell) => ({ id: cell.item.id, label: cell.word }));
    try {
      const result = await api("/api/labels", { items, session: tabSession });
      toast(`saved ${result.count} labels`);
    } catch (error) {
      toast(`not saved: ${error.message}`, true);
      return;
    }
    await loadGrid();
  });
}

// ---------------------------------------------------------------- review view
let reviewRequest = 0;
async function loadReview() {
  const filter = $("review-filter").value;
  const request = ++reviewRequest;
  const data = filter === "mislabels"
    ? await api("/api/mislabels?limit=120")
    : await api(`/api/review?label=${filter}&limit=120`);
  if (request !== reviewRequest) return; // a newer filter was chosen meanwhile
  $("review-total").textContent = filter === "mislabels"
    ? (data.model_id === null ? "train a model first" : `${data.items.length} label(s) the model #${data.model_id} confidently disputes`)
    : `${data.total} label(s), newest first`;
  const box = $("review");
  box.replaceChildren(...(data.items.length ? [] : [empty("none")]));
  for (const row of data.items) {
    const buttons = ["signal", "noise", "unsure"].map((word) => {
      const button = el("button", { textContent: word, className: row.label === word ? "on" : "" });
      button.addEventListener("click", async () => {
        try {
          await api("/api/relabel", { event_id: row.event_id, label: word, session: tabSession });
          toast(`relabelled as ${word}`);
          loadReview();
        } catch (error) { toast(error.message, true); }
      });
      return button;
    });
    const proba = row.heldout_proba !== undefined ? `held-out p ${fmt(row.heldout_proba, 2)}`
      : row.proba !== null ? `model p ${fmt(row.proba, 2)}` : "";
    box.append(el("div", { className: `item is-${row.label}` }, [
      el("img", { src: `${row.src}?high=${state.high}&s=${session()}`, alt: row.label }),
      el("div", { textContent: `${row.image} (${fmt(row.row, 0)}, ${fmt(row.col, 0)})` }),
      el("div", { textContent: `${row.label} · ${row.who} ${proba ? "· " + proba : ""}` }),
      el("div", { className: "buttons" }, buttons),
    ]));
  }
}

// ---------------------------------------------------------------- views and keys
function setView(view) {
  state.view = view;
  store.setItem("blobsift.view", view);
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === view);
  for (const section of document.querySelectorAll(".view")) section.classList.toggle("active", section.id === `view-${view}`);
  if (view === "grid") loadGrid().catch((error) => toast(error.message, true));
  if (view === "review") loadReview().catch((error) => toast(error.message, true));
}

const ACTIONS = {
  signal: () => labelCurrent("signal"),
  noise: () => labelCurrent("noise"),
  unsure: () => labelCurrent("unsure"),
  undo, train,
};

function onKey(event) {
  // A held key would label crop after crop: only deliberate presses count.
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  if (event.target.tagName === "SELECT" || event.target.tagName === "INPUT") {
    if (event.key !== "Escape") return;
    event.target.blur();
  }
  const help = $("help");
  const key = event.key;
  if (key === "?") { help.hidden = !help.hidden; return; }
  if (key === "Escape") { help.hidden = true; return; }
  if (key === "1") return setView("label");
  if (key === "2") return setView("grid");
  if (key === "3") return setView("review");
  if (key === "z") return undo();
  if (key === "t") return train();
  if (state.view === "label") {
    if (key === "s") return labelCurrent("signal");
    if (key === "n") return labelCurrent("noise");
    if (key === "u") return labelCurrent("unsure");
    if (key === "+" || key === "=") return setZoom(state.zoom + 1);
    if (key === "-") return setZoom(state.zoom - 1);
    if (key === "]") return setContrast(state.high - 0.5);
    if (key === "[") return setContrast(state.high + 0.5);
  } else if (state.view === "grid") {
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (moves[key]) { event.preventDefault(); return moveGrid(...moves[key]); }
    if (key === " ") { event.preventDefault(); return toggleGrid("signal"); }
    if (key === "u") return toggleGrid("unsure");
    if (key === "Enter") return acceptGrid();
  }
}

async function start() {
  // A token in the URL is now in a cookie; keep it out of the address bar and history.
  if (new URLSearchParams(location.search).has("token")) history.replaceState(null, "", "/");
  $("order").value = state.order;
  $("contrast").value = state.high;
  $("order").addEventListener("change", () => {
    state.order = $("order").value;
    store.setItem("blobsift.order", state.order);
    state.queue = [];
    if (state.view === "grid") loadGrid();
    else fillQueue();
  });
  $("zoom").addEventListener("input", () => setZoom(Number($("zoom").value)));
  $("contrast").addEventListener("change", () => setContrast(Number($("contrast").value)));
  $("help-button").addEventListener("click", () => { $("help").hidden = !$("help").hidden; });
  $("help").addEventListener("click", () => { $("help").hidden = true; });
  $("grid-accept").addEventListener("click", acceptGrid);
  $("review-filter").addEventListener("change", loadReview);
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => setView(tab.dataset.view));
  for (const button of document.querySelectorAll(".keys button")) {
    button.addEventListener("click", () => ACTIONS[button.dataset.act]());
  }
  document.addEventListener("keydown", onKey);
  // A clicked button keeps no focus, so Enter or space cannot press it again by accident.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (button) button.blur();
  });
  await refreshStatus();
  if (state.status.problem) toast(state.status.problem, true);
  listen();
  renderRecent();
  // Resume where this browser was: the crop on screen at the last visit, if still unlabelled.
  const saved = store.getItem("blobsift.current");
  let first = null;
  if (saved) {
    const item = await api(`/api/candidate/${saved}`).catch(() => null);
    if (item && item.label === -2) first = preload(item);
  }
  await show(first || (await nextItem()));
  fillQueue();
  setView(state.view);
  document.body.dataset.ready = "1";
}

start().catch((error) => toast(error.message, true));
