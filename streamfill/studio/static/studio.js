// streamfill studio: one page, plain JavaScript and canvas, no build step.
// Frames come from the server (decoded by streamfill, numbered the way streamfill numbers them) as preview
// JPEGs; keyframe strokes are kept as vectors in full-frame pixels and rendered to a full-resolution mask
// only when sent for tracking, so a 4K clip gets 4K masks while the page shows a small preview.
"use strict";

const $ = (id) => document.getElementById(id);
const S = {
  clip: null,            // the server's description of the open clip
  index: 0,              // current frame
  tool: "brush",
  size: 24,              // brush size in full-frame pixels
  keyframes: new Map(),  // index -> {strokes: [{erase, size, points: [[x, y], ...]}], box: [x, y, w, h] | null}
  undo: [],              // [{index, before}] snapshots of one frame's keyframe
  overlay: true,
  compare: false,
  wipe: 0.5,
  playing: false,
  job: null,             // the job followed on the page
  events: null,
  result: null,          // {job, name} of the finished removal
  frameImage: null, resultImage: null, maskImage: null, shownIndex: -1, frameTime: 0,
  approx: false,         // the frame shown is not the one asked for yet (while scrubbing)
};
const view = $("view");
const ctx = view.getContext("2d");
const maskLayer = document.createElement("canvas");  // preview-size red mask layer

// -- messages and requests ---------------------------------------------------------------------------------
function say(text, kind) {
  const m = $("message");
  if (!text) { m.hidden = true; m.textContent = ""; return; }
  m.hidden = false; m.textContent = text; m.className = kind || "";
}

async function api(path, options) {
  let response;
  try {
    response = await fetch(path, Object.assign({credentials: "same-origin"}, options || {}));
  } catch (err) {
    throw new Error("the studio server does not answer (was it stopped?)");
  }
  if (!response.ok) {
    let text = `${response.status} ${response.statusText}`;
    try { text = (await response.json()).error || text; } catch (err) { /* not JSON */ }
    throw new Error(text);
  }
  return response;
}
const json = async (path, options) => (await api(path, options)).json();
const post = (path, body) => json(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                         body: JSON.stringify(body || {})});
function guard(fn) {
  return async (...args) => { try { await fn(...args); } catch (err) { say(err.message); } };
}

// -- opening clips -----------------------------------------------------------------------------------------
async function browse(path) {
  const listing = await json(`api/files?path=${encodeURIComponent(path || "")}`);
  $("browser-path").textContent = "/" + listing.path;
  const list = $("browser-list");
  list.textContent = "";
  const add = (label, fn) => {
    const li = document.createElement("li");
    li.textContent = label;
    li.addEventListener("click", guard(fn));
    list.appendChild(li);
  };
  if (listing.parent !== null) add("../", () => browse(listing.parent));
  for (const d of listing.dirs) add(d.name + "/", () => browse(d.path));
  for (const f of listing.files) {
    add(`${f.name}  (${(f.size / 1048576).toFixed(1)} MB)`, async () => {
      $("browser").close();
      say("opening " + f.name + " …", "info");
      await setClip(await post("api/open", {path: f.path}));
      say("");
    });
  }
  if (!listing.dirs.length && !listing.files.length) add("(no videos here)", () => {});
}

async function upload(file) {
  const limit = S.limits ? S.limits.max_upload : Infinity;
  if (file.size > limit) {
    throw new Error(`${file.name} is larger than this studio accepts (${(limit / 1048576).toFixed(0)} MB; ` +
                    "start it with a larger --max-upload)");
  }
  say(`uploading ${file.name} (${(file.size / 1048576).toFixed(1)} MB) …`, "info");
  const clip = await json(`api/upload?name=${encodeURIComponent(file.name)}`, {method: "POST", body: file});
  await setClip(clip);
  say("");
}

function storageKey() { return S.clip ? `streamfill.studio.keys.${S.clip.id}` : null; }
function saveKeys() {
  if (!S.clip) return;
  if (S.clip.track && !S.stale) { S.stale = true; showTrackInfo(); }
  const data = [...S.keyframes.entries()].filter(([, k]) => k.box || k.strokes.length);
  try { localStorage.setItem(storageKey(), JSON.stringify(data)); } catch (err) { /* storage full */ }
}
function loadKeys() {
  S.keyframes = new Map();
  try {
    const data = JSON.parse(localStorage.getItem(storageKey()) || "[]");
    for (const [i, k] of data) S.keyframes.set(i, k);
  } catch (err) { /* ignore */ }
}

async function setClip(clip, frame, jobs) {
  S.clip = clip;
  localStorage.setItem("streamfill.studio.clip", clip.id);
  S.undo = []; S.index = 0; S.shownIndex = -1; S.approx = false; S.result = null; S.compare = false; S.stale = false;
  loadKeys();
  view.width = clip.preview[0]; view.height = clip.preview[1];
  maskLayer.width = view.width; maskLayer.height = view.height;
  fitView();
  $("clip-name").textContent = clip.name;
  showLength();
  if (clip.damaged) say(clip.damaged, "info");
  S.size = Math.max(2, Math.round(clip.width / 40));
  $("size").max = Math.max(100, Math.round(clip.width / 4));
  $("size").value = S.size; $("size-value").textContent = S.size;
  document.body.dataset.state = "ready";
  $("compare").checked = false;
  $("compare").disabled = !clip.result;
  $("download").hidden = true;
  // a clip opened again (after another one) still offers its result: the server's last finished removal
  if (!jobs) jobs = (await json("api/state")).jobs;
  const done = jobs.filter((j) => j.clip === clip.id && j.kind === "remove" && j.state === "done").pop();
  if (done) showResult(done);
  // the track and the job shown are this clip's (another clip's job goes on: opening that clip shows it again)
  showTrackInfo();
  const running = jobs.find((j) => j.clip === clip.id && ["queued", "running"].includes(j.state));
  if (running) followJob(running);
  else if (S.job && S.job.clip !== clip.id) dropJob();
  $("close-btn").hidden = false;
  updateMasksLink();
  drawTimeline();
  await show(frame || 0);
}

async function closeClip() {
  // the server frees the clip (its decoders, its previews' memory; the copy of an uploaded file is deleted);
  // it refuses while a job of the clip waits or runs, and the page keeps the clip then
  const clip = S.clip;
  if (!clip) return;
  await api(`api/clips/${clip.id}`, {method: "DELETE"});
  stopPlaying();
  for (const key of [storageKey(), `streamfill.studio.frame.${clip.id}`, "streamfill.studio.clip"]) {
    localStorage.removeItem(key);
  }
  S.clip = null; S.keyframes = new Map(); S.undo = []; S.result = null; S.compare = false; S.approx = false;
  S.frameImage = S.resultImage = S.maskImage = null; S.shownIndex = -1;
  if (S.job) dropJob();
  ctx.clearRect(0, 0, view.width, view.height);
  document.body.dataset.state = "empty";
  $("clip-name").textContent = "no clip";
  for (const id of ["clip-meta", "track-info", "approx-flag", "keyframe-flag"]) $(id).textContent = "";
  $("close-btn").hidden = $("download").hidden = $("masks-link").hidden = true;
  $("compare").checked = false; $("compare").disabled = true;
  drawTimeline();
  say("");  // (a frame of it still loading was answered "unknown clip")
}

function dropJob() {
  // the page stops following its job (the job itself goes on; opening its clip shows it again)
  if (S.events) S.events.close();
  S.events = null; S.job = null;
  $("job").hidden = true; $("cancel").hidden = true;
  $("track").disabled = $("remove").disabled = false;
  delete document.body.dataset.job;
}

function showLength() {
  // the clip's frames; fewer than the file's index once a job found it cannot be decoded past a point
  const clip = S.clip;
  const fps = clip.fps ? `${+clip.fps.toFixed(3)} fps` : "? fps";
  $("clip-meta").textContent = `${clip.width}×${clip.height}, ${clip.frames} frames, ${fps}` +
    (clip.preview[0] < clip.width ? ` (preview ${clip.preview[0]}×${clip.preview[1]})` : "") +
    (clip.damaged ? ` (damaged after frame ${clip.frames - 1})` : "");
  $("scrubber").max = clip.frames - 1;
  $("frame-number").max = clip.frames - 1;
  $("frame-count").textContent = clip.frames - 1;
}

function showResult(job) {
  // a finished removal: its options, the download link, the before/after wipe
  S.result = job;
  $("engine").value = job.options.engine;
  $("temporal").value = job.options.temporal;
  $("download").href = `api/jobs/${job.id}/download`;
  $("download").hidden = false;
  $("compare").disabled = false;
}

// -- frames ------------------------------------------------------------------------------------------------
function timecode(seconds, fps) {
  // a clip whose first frames come before zero (an edit list, a B-frame delay) shows "-" and the distance
  if (seconds < -1e-9) return "-" + timecode(-seconds, fps);
  const r = Math.round(fps || 25);
  const whole = Math.floor(seconds + 1e-9);
  const ff = Math.min(r - 1, Math.floor((seconds - whole) * (fps || 25) + 1e-6));
  const p = (n) => String(n).padStart(2, "0");
  return `${p(Math.floor(whole / 3600))}:${p(Math.floor(whole / 60) % 60)}:${p(whole % 60)}:${p(ff)}`;
}

async function image(url, signal) {
  const response = await api(url, signal ? {signal} : undefined);
  const blob = await response.blob();
  const h = response.headers;
  return {bitmap: await createImageBitmap(blob), time: parseFloat(h.get("X-Frame-Time") || "0"),
          index: h.has("X-Frame-Index") ? parseInt(h.get("X-Frame-Index"), 10) : null,
          exact: h.get("X-Frame-Exact") !== "0"};
}

let loading = false;
let wanted = {index: 0, exact: true};
let lastApprox = 0;
let inflight = null;  // the AbortController of an approximate (drag) request in flight
let wake = null;      // ends the pause between two drag requests early
const APPROX_MS = 50;
// Show frame ``index``; while a frame is loading only the latest request is kept (fast scrubbing).
// ``exact = false`` (the scrubber is being dragged): the server answers at once with the nearest frame it has
// decoded and moves its decoder toward the pointer; such a frame is marked approximate ("≈ frame N") until
// the exact one arrives (on release). A jump from an exact frame first shows the nearest one, then the exact.
// The release never waits behind a drag request: one in flight is dropped and the exact request sent at once.
async function show(index, exact = true) {
  if (!S.clip) return;
  index = Math.max(0, Math.min(S.clip.frames - 1, index | 0));
  S.index = index;
  wanted = {index, exact};
  try { localStorage.setItem(`streamfill.studio.frame.${S.clip.id}`, String(index)); } catch (err) { /* full */ }
  $("scrubber").value = index;
  $("frame-number").value = index;
  updateKeyFlag();
  if (loading) {
    if (exact) {
      if (inflight) inflight.abort();
      if (wake) wake();
    }
    return;
  }
  loading = true;
  try {
    while (S.clip) {  // (closed meanwhile: nothing more to show)
      if (!wanted.exact) {  // while dragging, at most one request per APPROX_MS (the decoder needs the cores)
        const left = APPROX_MS - (performance.now() - lastApprox);
        if (left > 0) await new Promise((r) => { wake = r; setTimeout(r, left); });
        wake = null;
        lastApprox = performance.now();
      }
      const i = wanted.index;
      const jump = wanted.exact && !S.approx && S.shownIndex >= 0 && Math.abs(i - S.shownIndex) > 1;
      const ex = wanted.exact && !jump;
      const clip = S.clip;
      const base = `api/clips/${clip.id}`;
      const control = ex ? null : new AbortController();
      inflight = control;
      let frame;
      try {
        frame = await image(`${base}/frames/${i}` + (ex ? "" : "?approx=1"), control && control.signal);
      } catch (err) {
        if (control && control.signal.aborted) continue;  // dropped for the release: ask for the exact frame
        throw err;
      } finally {
        inflight = null;
      }
      const shown = frame.index === null ? i : frame.index;
      const exactHere = frame.exact && shown === i;
      const tracked = S.clip.track && S.overlay;
      const [mask, result] = await Promise.all([
        tracked ? image(`${base}/masks/${shown}`) : Promise.resolve(null),
        S.compare && S.clip.result ? image(`${base}/frames/${shown}?which=result`) : Promise.resolve(null)]);
      if (S.clip !== clip) continue;  // another clip was opened meanwhile: this picture is not its frame
      S.frameImage = frame.bitmap; S.maskImage = mask && mask.bitmap; S.resultImage = result && result.bitmap;
      S.frameTime = frame.time; S.shownIndex = shown; S.approx = !exactHere;
      $("timecode").textContent = timecode(frame.time, S.clip.fps);
      $("approx-flag").textContent = exactHere ? "" : `≈ showing frame ${shown}`;
      render();
      if (wanted.index === i && (exactHere || !wanted.exact)) break;
    }
  } catch (err) {
    if (S.clip) say(err.message);
  } finally {
    loading = false;
  }
}

function keyAt(index) { return S.keyframes.get(index); }

function renderMaskLayer() {
  // red mask layer at preview size: this frame's own strokes/box if it is a keyframe, else the tracked mask
  const m = maskLayer.getContext("2d");
  m.globalCompositeOperation = "source-over";
  m.clearRect(0, 0, maskLayer.width, maskLayer.height);
  const key = keyAt(S.index);
  const own = key && key.strokes.length;
  if (S.maskImage && (own ? key.base : S.overlay)) {
    m.drawImage(S.maskImage, 0, 0, maskLayer.width, maskLayer.height);
    // the PNG is grey (white = remove): keep its brightness as coverage
    const data = m.getImageData(0, 0, maskLayer.width, maskLayer.height);
    const px = data.data;
    for (let k = 0; k < px.length; k += 4) { px[k + 3] = px[k]; }
    m.putImageData(data, 0, 0);
  }
  if (own) drawStrokes(m, key.strokes, view.width / S.clip.width);
  m.globalCompositeOperation = "source-in";
  m.fillStyle = "rgb(255, 40, 40)";
  m.fillRect(0, 0, maskLayer.width, maskLayer.height);
  m.globalCompositeOperation = "source-over";
}

function render() {
  if (!S.frameImage) return;
  view.dataset.index = String(S.shownIndex);
  view.dataset.exact = S.approx ? "0" : "1";
  ctx.globalAlpha = 1;
  ctx.drawImage(S.frameImage, 0, 0, view.width, view.height);
  if (S.compare && S.resultImage) {
    const x = Math.round(S.wipe * view.width);
    ctx.drawImage(S.resultImage, x, 0, view.width - x, view.height,
                  x, 0, view.width - x, view.height);
    ctx.fillStyle = "#fff";
    ctx.fillRect(x - 1, 0, 2, view.height);
    ctx.font = "14px system-ui"; ctx.fillText("before", 8, 18); ctx.fillText("after", view.width - 44, 18);
    view.dataset.overlay = "0";
    return;
  }
  renderMaskLayer();
  if (S.overlay || (keyAt(S.index) && keyAt(S.index).strokes.length)) {
    ctx.globalAlpha = 0.5;
    ctx.drawImage(maskLayer, 0, 0);
    ctx.globalAlpha = 1;
  }
  const key = keyAt(S.index);
  if (key && key.box) drawBox(key.box, "#ffd400");
  if (drag && drag.box) drawBox(drag.box, "#fff");
  view.dataset.overlay = S.overlay && (S.maskImage || (key && key.strokes.length)) ? "1" : "0";
}

function drawBox(box, colour) {
  const s = view.width / S.clip.width;
  ctx.save();
  ctx.strokeStyle = colour; ctx.lineWidth = 2; ctx.setLineDash([6, 4]);
  ctx.strokeRect(box[0] * s, box[1] * s, box[2] * s, box[3] * s);
  ctx.restore();
}

function drawStrokes(c, strokes, scale, edit) {
  // edit: erase strokes paint black (an edit picture on grey) instead of clearing what lies under them
  c.lineCap = "round"; c.lineJoin = "round";
  for (const st of strokes) {
    c.globalCompositeOperation = st.erase && !edit ? "destination-out" : "source-over";
    c.strokeStyle = c.fillStyle = st.erase && edit ? "#000" : "#fff";
    c.lineWidth = st.size * scale;
    const p = st.points;
    if (p.length === 1) {
      c.beginPath(); c.arc(p[0][0] * scale, p[0][1] * scale, st.size * scale / 2, 0, 2 * Math.PI); c.fill();
      continue;
    }
    c.beginPath();
    c.moveTo(p[0][0] * scale, p[0][1] * scale);
    for (let k = 1; k < p.length; k++) c.lineTo(p[k][0] * scale, p[k][1] * scale);
    c.stroke();
  }
  c.globalCompositeOperation = "source-over";
}

// -- drawing -----------------------------------------------------------------------------------------------
let drag = null;
function framePoint(event) {
  const r = view.getBoundingClientRect();
  const x = (event.clientX - r.left) / r.width * S.clip.width;
  const y = (event.clientY - r.top) / r.height * S.clip.height;
  return [Math.round(Math.max(0, Math.min(S.clip.width, x)) * 10) / 10,
          Math.round(Math.max(0, Math.min(S.clip.height, y)) * 10) / 10];
}
function snapshot(index) {
  const k = S.keyframes.get(index);
  S.undo.push({index, before: k ? JSON.parse(JSON.stringify(k)) : null});
  if (S.undo.length > 200) S.undo.shift();
}
function keyframeFor(index, correct) {
  // correct: a brush or eraser stroke begins (a box replaces the frame's mask: no tracked mask to keep)
  let k = S.keyframes.get(index);
  if (!k) {
    k = {strokes: [], box: null};
    S.keyframes.set(index, k);
    // painted over the tracked mask shown on this very frame: the strokes correct that mask (brush adds,
    // eraser removes); the server keeps the mask as it is now, so a later Track does not move the base
    if (correct && S.clip.track && S.maskImage && S.overlay && S.shownIndex === index && !S.approx) {
      keepBase(index, k);
    }
  }
  return k;
}
function keepBase(index, k) {
  k.base = "pending";
  post(`api/clips/${S.clip.id}/bases/${index}`, {}).then((r) => {
    if (k.base === "pending") { k.base = r.base; saveKeys(); updateKeyFlag(); }
  }).catch((err) => {
    delete k.base;
    if (!k.box && !k.strokes.some((s) => !s.erase) && S.keyframes.get(index) === k) S.keyframes.delete(index);
    say(err.message); saveKeys(); drawTimeline(); updateKeyFlag(); render();
  });
}

view.addEventListener("pointerdown", (event) => {
  if (!S.clip || event.button !== 0) return;
  view.setPointerCapture(event.pointerId);
  stopPlaying();
  const p = framePoint(event);
  if (S.compare) { drag = {wipe: true}; S.wipe = p[0] / S.clip.width; render(); return; }
  if (S.approx || S.shownIndex !== S.index) {
    // the picture on screen is another frame (scrubbing): a stroke would land on frame S.index, unseen
    say(`frame ${S.index} is still loading: draw once it shows (the picture now is frame ${S.shownIndex})`, "info");
    return;
  }
  snapshot(S.index);
  const key = keyframeFor(S.index, S.tool !== "box");
  if (S.tool === "box") {
    drag = {start: p, box: [p[0], p[1], 0, 0]};
  } else {
    key.box = null;  // a frame is a mask keyframe or a box keyframe
    const stroke = {erase: S.tool === "eraser", size: S.size, points: [p]};
    key.strokes.push(stroke);
    drag = {stroke};
  }
  render();
});
view.addEventListener("pointermove", (event) => {
  if (!drag) return;
  const p = framePoint(event);
  if (drag.wipe) { S.wipe = p[0] / S.clip.width; render(); return; }
  if (drag.stroke) drag.stroke.points.push(p);
  if (drag.box) {
    const [x0, y0] = drag.start;
    drag.box = [Math.min(x0, p[0]), Math.min(y0, p[1]), Math.abs(p[0] - x0), Math.abs(p[1] - y0)];
  }
  render();
});
function endDrag() {
  if (!drag) return;
  if (drag.wipe) { drag = null; return; }  // the before/after wipe changes no keyframe (the track is not stale)
  if (drag.box) {
    const b = drag.box.map(Math.round);
    const key = keyframeFor(S.index, false);
    if (b[2] >= 4 && b[3] >= 4) { key.box = b; key.strokes = []; }
  }
  drag = null;
  const key = S.keyframes.get(S.index);
  // a frame with only eraser strokes is no keyframe, unless they correct the tracked mask it shows
  if (key && !key.box && !key.base && !key.strokes.some((s) => !s.erase)) S.keyframes.delete(S.index);
  saveKeys(); drawTimeline(); updateKeyFlag(); render();
}
view.addEventListener("pointerup", endDrag);
view.addEventListener("pointercancel", endDrag);

function undo() {
  const last = S.undo.pop();
  if (!last) return;
  if (last.before) S.keyframes.set(last.index, last.before); else S.keyframes.delete(last.index);
  saveKeys(); drawTimeline(); updateKeyFlag();
  if (last.index !== S.index) show(last.index); else render();
}
function clearFrame() {
  if (!S.keyframes.has(S.index)) return;
  snapshot(S.index);
  S.keyframes.delete(S.index);
  saveKeys(); drawTimeline(); updateKeyFlag(); render();
}
function updateKeyFlag() {
  const k = S.keyframes.get(S.index);
  const weak = S.clip && S.clip.track && S.clip.track.weak.includes(S.index);
  $("keyframe-flag").textContent = (k ? (k.box ? "keyframe (box)" : k.base ? "keyframe (correction of the track)"
                                                                     : "keyframe (mask)") : "") +
    (weak ? (k ? " · " : "") + "weak track: check this frame, paint a correction" : "");
}

// -- timeline ----------------------------------------------------------------------------------------------
function drawTimeline() {
  const t = $("timeline");
  const c = t.getContext("2d");
  t.width = t.clientWidth || 1000;
  c.clearRect(0, 0, t.width, t.height);
  if (!S.clip) return;
  const n = S.clip.frames;
  const x = (i) => (i + 0.5) / n * t.width;
  const w = Math.max(2, t.width / n);
  if (S.clip.track) {
    c.fillStyle = "#2d5a35";
    c.fillRect(0, 9, t.width, 5);
    c.fillStyle = "#f08c00";
    for (const [a, b] of S.clip.track.weak_spans) c.fillRect(x(a) - w / 2, 0, x(b) - x(a) + w, t.height);
  }
  c.fillStyle = "#4aa3ff";
  for (const i of S.keyframes.keys()) c.fillRect(x(i) - w / 2, 0, w, 9);
}
$("timeline").addEventListener("click", (event) => {
  if (!S.clip) return;
  const r = event.target.getBoundingClientRect();
  show(Math.floor((event.clientX - r.left) / r.width * S.clip.frames));
});

// -- playback ----------------------------------------------------------------------------------------------
function stopPlaying() { S.playing = false; $("play").textContent = "▶"; }
async function play() {
  if (!S.clip) return;
  if (S.playing) { stopPlaying(); return; }
  S.playing = true; $("play").textContent = "❚❚";
  const period = 1000 / (S.clip.fps || 25);
  if (S.index >= S.clip.frames - 1) await show(0);
  while (S.playing && S.index < S.clip.frames - 1) {
    const t0 = performance.now();
    await show(S.index + 1);
    const left = period - (performance.now() - t0);
    if (left > 0) await new Promise((r) => setTimeout(r, left));
  }
  stopPlaying();
}

// -- jobs --------------------------------------------------------------------------------------------------
function followJob(job) {
  S.job = job;
  S.notesShown = 0;
  if (job.kind === "remove") {  // found again after a reload: show the options it runs with, not the defaults
    $("engine").value = job.options.engine;
    $("temporal").value = job.options.temporal;
  }
  if (S.events) S.events.close();
  const box = $("job");
  box.hidden = false;
  $("job-title").textContent = job.kind === "track" ? "Tracking" : "Removing";
  updateJob(job);
  const events = new EventSource(`api/jobs/${job.id}/events`);
  S.events = events;
  events.onmessage = (event) => {
    const snap = JSON.parse(event.data);
    updateJob(snap);
    if (["done", "failed", "cancelled"].includes(snap.state)) { events.close(); S.events = null; finished(snap); }
  };
  events.onerror = () => {
    // the server went away or the stream ended early: ask once more
    events.close(); S.events = null;
    setTimeout(guard(async () => {
      const snap = await json(`api/jobs/${job.id}`);
      if (["queued", "running"].includes(snap.state)) followJob(snap); else { updateJob(snap); finished(snap); }
    }), 1000);
  };
}

function updateJob(s) {
  const busy = ["queued", "running"].includes(s.state);
  document.body.dataset.job = s.state;
  $("progress").value = s.percent || 0;
  let text = s.state === "queued" ? "waiting for another job" :
    `${s.done}/${s.total ?? "?"} frames` + (s.percent !== null ? ` · ${s.percent.toFixed(0)} %` : "");
  if (s.state === "running") text += ` · ${s.fps.toFixed(1)} fps` + (s.eta !== null ? ` · ETA ${Math.ceil(s.eta)} s` : "");
  if (s.state === "done") text += ` · done in ${s.elapsed.toFixed(1)} s`;
  if (s.cancelling) text = `cancelling… (${s.done}/${s.total ?? "?"} frames; it stops at the next frame` +
    (s.done ? ")" : ", or once the engine is loaded)");
  if (s.state === "cancelled") text = "cancelled";
  if (s.state === "failed") text = "failed: " + s.error;
  $("job-text").textContent = text;
  $("cancel").hidden = !busy;
  $("cancel").disabled = !!s.cancelling;
  // what the job notes while it runs (the engine compiled for minutes first, a 10-bit source) shows at once
  if (busy && s.warnings && s.warnings.length > (S.notesShown || 0)) {
    S.notesShown = s.warnings.length;
    say(s.warnings.join(" · "), "info");
  }
  $("track").disabled = $("remove").disabled = busy;
}

async function finished(snap) {
  if (snap.state === "failed") say(snap.error);
  if (snap.warnings && snap.warnings.length) say(snap.warnings.join(" · "), "info");
  if (snap.state === "cancelled" || !S.clip || snap.clip !== S.clip.id) return;
  const clip = S.clip, known = clip.damaged;
  const fresh = await json(`api/clips/${clip.id}`);
  if (S.clip !== clip) return;  // closed, or another clip opened, while the answer was on its way
  Object.assign(clip, fresh);
  if (S.clip.damaged && !known) {  // said once: the job found the clip cannot be decoded to its end
    say([...(snap.state === "failed" ? [snap.error] : []), ...(snap.warnings || []), S.clip.damaged].join(" · "),
        snap.state === "failed" ? "" : "info");
    showLength(); drawTimeline();
    if (S.index >= S.clip.frames) await show(S.clip.frames - 1);
  }
  if (snap.state !== "done") return;
  showLength();
  if (snap.kind === "track") {
    showTrackInfo();
    updateMasksLink();
  } else {
    showResult(snap);
    $("compare").checked = S.compare = true;
  }
  drawTimeline(); updateKeyFlag();
  S.shownIndex = -1;
  await show(S.index);
}

function showTrackInfo() {
  const t = S.clip.track;
  if (!t) { $("track-info").textContent = ""; return; }
  $("track-info").textContent = `${t.masked}/${t.frames} frames masked; weak: ${t.weak.length}` +
    ({area: " (judged by mask area)", lost: " (where the tracker lost it)"}[t.signal] || " (tracker confidence)") +
    (S.stale ? ". Keyframes changed since: press Track again." : "");
}
function updateMasksLink() {
  const link = $("masks-link");
  link.hidden = !(S.clip && S.clip.has_masks);
  if (S.clip) link.href = `api/clips/${S.clip.id}/masks.mkv`;
}

async function fullMask(strokes, edit) {
  // the keyframe's strokes rendered at the clip's full resolution, as a PNG data URL; edit (a correction of
  // the tracked mask): white adds, black erases, grey keeps the tracked mask
  const c = document.createElement("canvas");
  c.width = S.clip.width; c.height = S.clip.height;
  const g = c.getContext("2d");
  g.fillStyle = edit ? "#808080" : "#000"; g.fillRect(0, 0, c.width, c.height);
  if (edit) { drawStrokes(g, strokes, 1, true); return c.toDataURL("image/png"); }
  // erasing must reveal black, not transparency: draw strokes on a layer, then on the black ground
  const layer = document.createElement("canvas");
  layer.width = c.width; layer.height = c.height;
  drawStrokes(layer.getContext("2d"), strokes, 1);
  g.drawImage(layer, 0, 0);
  return c.toDataURL("image/png");
}

async function track() {
  if (!S.clip) throw new Error("open a clip first");
  const keys = [];
  for (const [index, k] of [...S.keyframes.entries()].sort((a, b) => a[0] - b[0])) {
    if (index >= S.clip.frames) continue;  // painted before a job found the clip damaged there (said then)
    if (k.box) keys.push({index, box: k.box.map(Math.round)});
    else if (k.base === "pending") throw new Error(`frame ${index}: its tracked mask is still being kept; try again`);
    else if (k.base) keys.push({index, base: k.base, mask: await fullMask(k.strokes, true)});
    else if (k.strokes.some((s) => !s.erase)) keys.push({index, mask: await fullMask(k.strokes)});
  }
  if (!keys.length) throw new Error("nothing to track: paint over the object (or draw a box) on a frame first");
  say("");
  S.stale = false;
  followJob(await post(`api/clips/${S.clip.id}/track`, {keyframes: keys}));
}

async function remove() {
  if (!S.clip) throw new Error("open a clip first");
  say("");
  followJob(await post(`api/clips/${S.clip.id}/remove`, {engine: $("engine").value, temporal: $("temporal").value}));
}

// -- wiring ------------------------------------------------------------------------------------------------
function setTool(tool) {
  S.tool = tool;
  for (const b of document.querySelectorAll(".tool")) b.classList.toggle("active", b.dataset.tool === tool);
}
for (const b of document.querySelectorAll(".tool")) b.addEventListener("click", () => setTool(b.dataset.tool));
$("size").addEventListener("input", () => { S.size = +$("size").value; $("size-value").textContent = S.size; });
$("undo").addEventListener("click", undo);
$("clear-frame").addEventListener("click", clearFrame);
$("overlay").addEventListener("change", () => { S.overlay = $("overlay").checked; S.shownIndex = -1; show(S.index); });
$("compare").addEventListener("change", () => { S.compare = $("compare").checked; show(S.index); });
$("track").addEventListener("click", guard(track));
$("remove").addEventListener("click", guard(remove));
$("cancel").addEventListener("click", guard(async () => { if (S.job) updateJob(await post(`api/jobs/${S.job.id}/cancel`)); }));
$("close-btn").addEventListener("click", guard(closeClip));
$("open-btn").addEventListener("click", guard(async () => { await browse(""); $("browser").showModal(); }));
$("upload").addEventListener("change", guard(async () => {
  const file = $("upload").files[0];
  $("upload").value = "";
  if (file) await upload(file);
}));
// dragging the scrubber sends the pointer's frame (approximate answers); the release asks for the exact frame
$("scrubber").addEventListener("input", () => { stopPlaying(); show(+$("scrubber").value, false); });
$("scrubber").addEventListener("change", () => { stopPlaying(); show(+$("scrubber").value, true); });
$("frame-number").addEventListener("change", () => { stopPlaying(); show(+$("frame-number").value); });
$("prev").addEventListener("click", () => { stopPlaying(); show(S.index - 1); });
$("next").addEventListener("click", () => { stopPlaying(); show(S.index + 1); });
$("play").addEventListener("click", play);
function fitView() {
  // the preview fills the stage (scaled up or down), keeping its aspect ratio
  const stage = $("stage");
  const sw = stage.clientWidth - 16, sh = stage.clientHeight - 16;
  if (sw <= 0 || sh <= 0) return;
  const scale = Math.min(sw / view.width, sh / view.height);
  view.style.width = `${Math.floor(view.width * scale)}px`;
  view.style.height = `${Math.floor(view.height * scale)}px`;
}
window.addEventListener("resize", () => { fitView(); drawTimeline(); });
document.addEventListener("keydown", (event) => {
  const t = event.target;
  if (t.tagName === "SELECT" || (t.tagName === "INPUT" && t.type !== "range" && t.type !== "checkbox")) return;
  if (!S.clip) return;
  const step = event.shiftKey ? 10 : 1;
  if (event.key === "ArrowLeft") { stopPlaying(); show(S.index - step); }
  else if (event.key === "ArrowRight") { stopPlaying(); show(S.index + step); }
  else if (event.key === " ") play();
  else if ((event.ctrlKey || event.metaKey) && event.key === "z") undo();
  else if (event.key === "b") setTool("brush");
  else if (event.key === "e") setTool("eraser");
  else if (event.key === "x") setTool("box");
  else return;
  event.preventDefault();
});

// test and debugging hook: how much of the shown overlay is mask, and where
window.studio = {
  state: S,
  render,
  show,
  maskCoverage() {
    const d = maskLayer.getContext("2d").getImageData(0, 0, maskLayer.width, maskLayer.height).data;
    let n = 0, x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
    for (let k = 3, p = 0; k < d.length; k += 4, p++) {
      if (d[k] > 127) {
        n++;
        const x = p % maskLayer.width, y = (p / maskLayer.width) | 0;
        x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
      }
    }
    return {index: S.shownIndex, pixels: n, fraction: n / (maskLayer.width * maskLayer.height),
            box: n ? [x0, y0, x1 - x0 + 1, y1 - y0 + 1] : null, scale: maskLayer.width / S.clip.width};
  },
};

// -- start: engines, then the clip and job of before a reload ----------------------------------------------
guard(async () => {
  const st = await json("api/state");
  S.limits = st.limits;
  for (const [id, values, chosen] of [["engine", st.engines, st.default_engine],
                                      ["temporal", st.temporal_modes, st.default_temporal]]) {
    for (const v of values) {
      const o = document.createElement("option");
      o.value = o.textContent = v;
      if (v === chosen) o.selected = true;
      $(id).appendChild(o);
    }
  }
  const last = localStorage.getItem("streamfill.studio.clip");
  const clip = st.clips.find((c) => c.id === last);
  if (!clip) return;
  await setClip(clip, parseInt(localStorage.getItem(`streamfill.studio.frame.${clip.id}`) || "0", 10), st.jobs);
})();
