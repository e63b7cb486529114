"""The labelling page `cmr label serve` sends: plain HTML and JavaScript, no build step, no external file.

It asks the API (:mod:`.web`) for the rater's task and shows it: a ``score`` task as the slice with
a 0–100 slider that shows no number (zoom with the wheel, pan by dragging, window with the two
sliders beside it; Submit is enabled once the slider has been moved), a ``rank`` task as 8 tiles to
drag (or move with the arrows) from most basal to most apical, a ``classify`` task as the slice
with three class buttons. Once a task is on screen, ``<body data-task>`` names it (``score KEY``,
``rank BATCH``, ``classify KEY``, ``done``) — what Testing/test_labelling_browser.py waits for. Who is rating comes from a list of names on a local server, or from the
token in the link (kept for the session, then removed from the address bar) on a shared one.
"""

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SlicerCMR labelling</title>
<style>
  body { font-family: system-ui, sans-serif; background: #111; color: #ddd; margin: 0; }
  header { padding: 8px 16px; background: #222; display: flex; gap: 16px; align-items: baseline; }
  main { padding: 16px; }
  section[hidden], [hidden] { display: none !important; }
  button { font-size: 15px; padding: 6px 14px; margin: 4px; }
  .viewer { width: min(70vh, 90vw); height: min(70vh, 90vw); overflow: hidden; background: #000;
            position: relative; cursor: grab; margin: 8px 0; }
  .viewer img { position: absolute; left: 0; top: 0; width: 100%; height: 100%; object-fit: contain;
                transform-origin: 0 0; user-select: none; -webkit-user-drag: none; image-rendering: auto; }
  .vas { display: flex; align-items: center; gap: 12px; width: min(70vh, 90vw); }
  .vas input { flex: 1; }
  .controls label { margin-right: 12px; }
  #tiles { display: grid; grid-template-columns: repeat(4, minmax(120px, 220px)); gap: 8px; }
  .tile { background: #000; border: 2px solid #444; padding: 4px; cursor: move; text-align: center; }
  .tile.over { border-color: #4dabf7; }
  .tile img { width: 100%; aspect-ratio: 1; object-fit: contain; pointer-events: none; }
  .tile .place { font-size: 13px; color: #aaa; }
  .ends { color: #aaa; margin: 6px 0; }
  #error { color: #ff8787; }
</style>
</head>
<body>
<header><b>SlicerCMR labelling</b><span id="mode"></span><span id="who"></span><span id="progress"></span></header>
<main>
  <section id="login" hidden>
    <div id="pick" hidden><label>Rater <select id="raterSelect"></select></label></div>
    <div id="tokenBox" hidden><label>Access token <input id="tokenInput" size="36" autocomplete="off"></label></div>
    <button id="start">Start</button>
  </section>
  <section id="score" hidden>
    <div class="viewer" id="scoreViewer"><img id="scoreImg" alt="slice to score"></div>
    <div class="controls">
      <label>contrast <input type="range" id="contrast" min="20" max="400" value="100"></label>
      <label>brightness <input type="range" id="brightness" min="20" max="300" value="100"></label>
      <button id="resetView">reset view</button>
    </div>
    <div class="vas"><span>certainly no LGE</span>
      <input type="range" id="vas" min="0" max="100" step="0.1" value="50" aria-label="likelihood of LGE">
      <span>certainly LGE</span></div>
    <button id="submitScore" disabled>Submit</button>
  </section>
  <section id="rank" hidden>
    <div class="ends">most basal (first) → most apical (last): drag the tiles, or move them with the arrows</div>
    <div id="tiles"></div>
    <button id="submitRank">Submit order</button>
  </section>
  <section id="classify" hidden>
    <div class="viewer" id="classViewer"><img id="classImg" alt="slice to classify"></div>
    <button data-class="too basal">too basal</button><button data-class="LV">LV</button>
    <button data-class="too apical">too apical</button>
  </section>
  <section id="done" hidden><p id="doneText"></p></section>
  <p id="error" role="alert"></p>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const state = { rater: sessionStorage.getItem("rater"), token: sessionStorage.getItem("token"), task: null, pool: null };

function headers() {
  const h = { "Content-Type": "application/json" };
  if (state.rater) h["X-Rater"] = state.rater;
  if (state.token) h["X-Token"] = state.token;
  return h;
}

async function api(path, options = {}) {
  const reply = await fetch(path, { ...options, headers: headers() });
  const type = reply.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await reply.json() : await reply.blob();
  if (!reply.ok) throw new Error((data && data.error) || reply.statusText);
  return data;
}

async function imageUrl(key) {
  return URL.createObjectURL(await api(`/api/image/${key}.png`));
}

function show(which) {
  for (const id of ["login", "score", "rank", "classify", "done"]) $(id).hidden = id !== which;
  $("error").textContent = "";
}

function fail(error) { $("error").textContent = String(error.message || error); }

// ---- zoom, pan and window of a viewer ------------------------------------------------------------
function viewer(box, img) {
  const v = { scale: 1, x: 0, y: 0, drag: null };
  const apply = () => {
    img.style.transform = `translate(${v.x}px, ${v.y}px) scale(${v.scale})`;
    img.style.filter = `contrast(${$("contrast").value}%) brightness(${$("brightness").value}%)`;
  };
  box.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = box.getBoundingClientRect(), f = e.deltaY < 0 ? 1.15 : 1 / 1.15;
    const cx = e.clientX - r.left, cy = e.clientY - r.top;
    v.x = cx - (cx - v.x) * f; v.y = cy - (cy - v.y) * f; v.scale *= f; apply();
  }, { passive: false });
  box.addEventListener("mousedown", (e) => { v.drag = [e.clientX - v.x, e.clientY - v.y]; });
  window.addEventListener("mouseup", () => { v.drag = null; });
  window.addEventListener("mousemove", (e) => {
    if (v.drag) { v.x = e.clientX - v.drag[0]; v.y = e.clientY - v.drag[1]; apply(); }
  });
  v.reset = () => { v.scale = 1; v.x = 0; v.y = 0; apply(); };
  v.apply = apply;
  return v;
}
const scoreView = viewer($("scoreViewer"), $("scoreImg"));
const classView = viewer($("classViewer"), $("classImg"));
for (const id of ["contrast", "brightness"]) $(id).addEventListener("input", () => { scoreView.apply(); classView.apply(); });
$("resetView").addEventListener("click", () => {
  $("contrast").value = 100; $("brightness").value = 100; scoreView.reset();
});

// ---- tasks -------------------------------------------------------------------------------------------
async function next() {
  try {
    const task = await api("/api/next");
    state.task = task;
    $("who").textContent = `rater: ${task.rater}`;
    if (task.kind === "score") {
      $("scoreImg").src = await imageUrl(task.images[0]); $("scoreImg").dataset.key = task.images[0];
      $("vas").value = 50; $("submitScore").disabled = true; scoreView.reset();
      show("score");
    } else if (task.kind === "rank") {
      await tiles(task.images);
      show("rank");
    } else if (task.kind === "classify") {
      $("classImg").src = await imageUrl(task.images[0]); classView.reset();
      show("classify");
    } else {
      $("doneText").textContent = task.message; show("done");
    }
    $("progress").textContent = task.message;
    // what is on screen, once it is all there (for tests and tools driving the page)
    document.body.dataset.task = task.kind === "rank" ? `rank ${task.batch}` : `${task.kind} ${task.images[0] || ""}`.trim();
  } catch (e) { fail(e); }
}

async function send(body) {
  try {
    const result = await api("/api/answer", { method: "POST", body: JSON.stringify(body) });
    if (result.note) $("progress").textContent = result.note;
    await next();
  } catch (e) { fail(e); }
}

$("vas").addEventListener("input", () => { $("submitScore").disabled = false; });
$("submitScore").addEventListener("click", () => send({ image: state.task.images[0], score: Number($("vas").value) }));
for (const b of document.querySelectorAll("#classify button[data-class]"))
  b.addEventListener("click", () => send({ image: state.task.images[0], class: b.dataset.class }));

async function tiles(keys) {
  const box = $("tiles");
  box.replaceChildren();
  for (const key of keys) {
    const t = document.createElement("div");
    t.className = "tile"; t.draggable = true; t.dataset.key = key;
    const img = document.createElement("img"); img.alt = "slice"; img.src = await imageUrl(key);
    const bar = document.createElement("div"); bar.className = "place";
    const left = document.createElement("button"); left.textContent = "◀"; left.title = "more basal";
    const right = document.createElement("button"); right.textContent = "▶"; right.title = "more apical";
    const label = document.createElement("span");
    left.addEventListener("click", () => { if (t.previousElementSibling) box.insertBefore(t, t.previousElementSibling); places(); });
    right.addEventListener("click", () => { if (t.nextElementSibling) box.insertBefore(t.nextElementSibling, t); places(); });
    bar.append(left, label, right); t.append(img, bar); box.append(t);
    t.addEventListener("dragstart", (e) => { e.dataTransfer.setData("text/plain", key); });
    t.addEventListener("dragover", (e) => { e.preventDefault(); t.classList.add("over"); });
    t.addEventListener("dragleave", () => t.classList.remove("over"));
    t.addEventListener("drop", (e) => {
      e.preventDefault(); t.classList.remove("over");
      const moved = box.querySelector(`[data-key="${e.dataTransfer.getData("text/plain")}"]`);
      if (!moved || moved === t) return;
      const after = [...box.children].indexOf(moved) < [...box.children].indexOf(t);
      box.insertBefore(moved, after ? t.nextSibling : t); places();
    });
  }
  places();
}

function places() {
  const all = [...$("tiles").children];
  all.forEach((t, i) => { t.querySelector(".place span").textContent = ` ${i + 1} of ${all.length} `; });
}

$("submitRank").addEventListener("click", () =>
  send({ batch: state.task.batch, order: [...$("tiles").children].map((t) => t.dataset.key) }));

// ---- who is rating -------------------------------------------------------------------------------------
async function start() {
  const params = new URLSearchParams(location.search);
  if (params.get("token")) {  // from the link; kept for this session only, out of the address bar
    state.token = params.get("token"); sessionStorage.setItem("token", state.token);
    history.replaceState(null, "", location.pathname);
  }
  try { state.pool = await api("/api/pool"); } catch (e) { fail(e); return; }
  $("mode").textContent = `${state.pool.mode_name}, ${state.pool.images} images`;
  if ((state.pool.tokens && state.token) || (!state.pool.tokens && state.rater)) { await next(); return; }
  $("pick").hidden = state.pool.tokens; $("tokenBox").hidden = !state.pool.tokens;
  $("raterSelect").replaceChildren(...state.pool.raters.map((n) => new Option(n, n)));
  show("login");
}

$("start").addEventListener("click", async () => {
  if (state.pool.tokens) { state.token = $("tokenInput").value.trim(); sessionStorage.setItem("token", state.token); }
  else { state.rater = $("raterSelect").value; sessionStorage.setItem("rater", state.rater); }
  await next();
});

start();
</script>
</body>
</html>
"""
