/* Item editor: a workspace of the picture (view.js: zoom, pan, split) beside the panel of
   sliders. Moving a slider asks for a new preview at once when none is being rendered, else as
   soon as the one being rendered is on screen (the newest position wins; a drag never starves
   the worker with versions it would throw away). Results are pushed: Portal.follow listens to
   the batch's event stream and loads the item when an event names it (polling only without
   the stream), and the other photos' events go to the filmstrip (filmstrip.js). The preview
   of an edit is asked for as soon as the edit is answered, with a wait (GET preview?v=N&wait:
   the server answers when that version exists, from the worker's preview lane before the
   database knows); a pushed event of the newest edit loads it too, whichever comes first.
   Every request gets a new edit_version from the server; the page shows a preview only when it
   belongs to the newest version asked for, and never swaps in an older image than the one on
   screen. Each preview shown after a slider move is timed from the move to the frame it is on
   screen (performance.measure "slider-to-preview"; bench/editor_latency.py reads them).
   Several faces: the sliders edit all faces (the item's edits) or the face picked on the photo
   (that face's override, sent with "face"); edits.js keeps that model and its undo history
   (Ctrl+Z, Ctrl+Shift+Z here), view.js the picture's tools and keys. */
"use strict";

(function () {
  const root = document.getElementById("editor");
  if (!root) return;
  const costs = JSON.parse(root.dataset.costs);
  const recipeEdits = JSON.parse(root.dataset.recipeEdits);
  let item = Portal.view(JSON.parse(root.dataset.item));
  const previewImg = document.getElementById("preview-img");
  const beforeImg = document.getElementById("before-img");
  const statusLine = document.getElementById("status-line");
  const errorBox = document.getElementById("item-error");
  const SETTLED = new Set(["preview_ready", "done", "failed", "canceled"]);
  const SHOWABLE = new Set(["preview_ready", "finalizing", "done"]);
  const STALL_MS = 4000;  // a preview not back by then does not hold the next request
  const WAIT_S = 10;      // how long the server holds an edit's image request (long-poll)

  let requested = item.edit_version;               // newest version this page asked for (or saw)
  let shown = Number(previewImg.dataset.version);  // version of the preview on screen
  let pending = 0;                                 // edit requests not answered yet
  let awaiting = null;                             // {version, since}: a preview being rendered
  let waitingSince = null;                         // when the current render was asked for
  let finalizing = item.status === "finalizing";
  let shownSrc = previewImg.getAttribute("src");
  let finalQueued = false;                         // Finalize pressed while a preview renders
  let movedAt = null;                              // first slider move not sent yet
  const movedFor = {};                             // version -> when its first move was

  const strip = Filmstrip.create(document.querySelector(".filmstrip"), root.dataset.batchUrl);

  Portal.bindSliderOutputs(root);
  const previewCost = Portal.bindCost(root, "preview", costs, function () { send(); });

  function say(text) { statusLine.textContent = text; }
  function costText(cost) { return Math.round(cost.channels * 100) + "% channels, " + cost.resolution + " px"; }

  function renderTime(timings, stage) {
    // The worker names its stages; pick the render of this stage when it is there.
    const keys = Object.keys(timings || {});
    const key = keys.find(function (k) { return k === stage + "_render" || k === "render_" + stage; })
      || keys.find(function (k) { return k.indexOf(stage) !== -1; });
    return key ? timings[key] : null;
  }

  /* What the sliders edit (edits.js): the scope's text and picker follow it; an undo or redo
     asks for its preview. */
  const edits = EditState.create(root, item, recipeEdits, {
    scope: describeScope,
    travelled: function () { send(); },
  });

  /* --- faces: outlines on the photo, or buttons for face crops; two faces or more ------------ */
  const facePicker = document.getElementById("face-picker");
  const allFaces = document.getElementById("all-faces");
  const faceScope = document.getElementById("face-scope");
  const faceBoxes = root.dataset.output === "photo" ? FaceBoxes.create(previewImg, pickFace)
    : FaceBoxes.buttons(facePicker, pickFace);
  let faces = null, knownFaces = "null";

  function showFaces(list) {
    const text = JSON.stringify(list || null);
    if (text === knownFaces) return;
    knownFaces = text;
    faces = Array.isArray(list) ? list : null;
    const several = faces !== null && faces.length > 1;
    facePicker.hidden = !several;
    faceBoxes.show(several ? faces : []);
    const face = edits.face();
    if (face !== null && !(several && face < faces.length)) edits.show(null);
    else faceBoxes.select(face);
  }

  function describeScope(face, own) {
    allFaces.setAttribute("aria-pressed", String(face === null));
    faceBoxes.select(face);
    root.dataset.face = face === null ? "all" : String(face);
    faceScope.textContent = face === null
      ? "Editing all faces (except those with edits of their own). Pick a face on the photo to edit it alone."
      : "Editing face " + (face + 1) + (own ? " alone." : ": it has the shared edits until you move a slider.");
  }

  function pickFace(face) {
    if (face === edits.face()) return;
    if (scheduled) send();  // the last slider move goes out for the face it was for
    edits.remember();
    edits.show(face);
  }
  allFaces.addEventListener("click", function () { pickFace(null); });

  /* The point zoom centres: the selected face, else the largest, else the middle. */
  function focusPoint() {
    if (root.dataset.output !== "photo" || !faces || !faces.length) return null;
    const area = function (f) { return (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]); };
    const chosen = edits.face();
    const face = chosen !== null && faces[chosen] ? faces[chosen]
      : faces.reduce(function (a, b) { return area(b) > area(a) ? b : a; });
    return { x: (face.box[0] + face.box[2]) / 2, y: (face.box[1] + face.box[3]) / 2 };
  }

  /* --- asking for previews ------------------------------------------------------------- */
  let scheduled = false;  // a slider moved; its preview request has not gone out yet

  async function send() {
    scheduled = false;
    pending += 1;
    markPending();
    waitingSince = performance.now();
    const since = movedAt;
    movedAt = null;
    say("Asking for a new preview (" + costText(previewCost()) + ")\u2026");
    try {
      const answer = await Portal.request("POST", root.dataset.editsUrl, edits.body(previewCost()));
      // Answers may come back out of order: the newest version wins.
      requested = Math.max(requested, answer.edit_version);
      performance.mark("edit-answered", { detail: answer.edit_version });
      // Its preview may be on screen already (pushed before this answer came back).
      awaiting = answer.edit_version > shown ? { version: answer.edit_version, since: performance.now() } : null;
      if (since !== null) { movedFor[answer.edit_version] = since; timeMoves(); }
      errorBox.hidden = true;
      if (awaiting) {  // its picture the moment it exists (a failure or time-out ends the wait)
        showPreview(answer.edit_version, root.dataset.previewUrl + "?v=" + answer.edit_version +
                    "&wait=" + WAIT_S, function () { follower.refresh(0); });
      }
    } catch (e) {
      errorBox.textContent = "Could not ask for a preview: " + e.message;
      errorBox.hidden = false;
    } finally {
      pending -= 1;
      markPending();
    }
    follower.refresh(follower.streaming() ? 5000 : 300);
    pump();
  }

  /* Whether the page still waits on something it asked for (for people: the status line; for
     tests and benches: data-pending). */
  function markPending() {
    root.dataset.pending = String(scheduled || pending > 0 || awaiting !== null);
    root.dataset.requested = String(requested);
  }

  /* Send the newest slider position unless a preview is still on its way. */
  function pump() {
    if (awaiting && awaiting.version <= shown) awaiting = null;
    markPending();
    if (!scheduled || pending > 0) return;
    if (awaiting && performance.now() - awaiting.since < STALL_MS) {
      setTimeout(pump, STALL_MS);
      return;
    }
    send();
  }
  function moved() {
    if (movedAt === null) movedAt = performance.now();
    scheduled = true;
    markPending();
    pump();
  }

  /* ``then``: called once the image has loaded (or failed to). */
  function showPreview(version, src, then) {
    if (!src || version <= shown) { if (then) then(); return; }
    // Load off-screen first; only a still-newest image replaces the one on screen.
    const loader = new Image();
    loader.onerror = function () { if (then) then(); };
    loader.onload = function () {
      performance.mark("preview-loaded", { detail: version });
      if (then) then();
      if (version <= shown) return;
      shown = version;
      shownSrc = src;
      previewImg.src = src;
      previewImg.dataset.version = String(version);
      document.getElementById("preview-caption").textContent = "Preview";
      document.getElementById("preview-version").textContent = "v" + version;
      if (!view.before()) root.dataset.showing = "preview";
      strip.showCurrent(src);  // the filmstrip shows this photo as it is now
      if (awaiting && version >= awaiting.version) awaiting = null;
      onScreen(version);
      pump();
    };
    loader.src = src;
  }

  /* The frame after the swap is the one the user sees: time the move that asked for it. */
  function onScreen(version) {
    requestAnimationFrame(function () {
      requestAnimationFrame(function () {
        root.dataset.shownVersion = String(shown);
        onScreenAt = { version: version, at: performance.now() };
        timeMoves();
      });
    });
  }

  /* The moves a preview on screen answers (its version or older), timed to when it was. */
  let onScreenAt = null;
  function timeMoves() {
    if (!onScreenAt) return;
    Object.keys(movedFor).map(Number).filter(function (v) { return v <= onScreenAt.version; })
      .sort(function (a, b) { return a - b; }).slice(0, 1).forEach(function (v) {
        const m = performance.measure("slider-to-preview",
                                      { start: movedFor[v], end: onScreenAt.at, detail: onScreenAt.version });
        root.dataset.lastLatencyMs = String(Math.round(m.duration));
      });
    Object.keys(movedFor).forEach(function (v) { if (Number(v) <= onScreenAt.version) delete movedFor[v]; });
  }

  function describe(data) {
    if (data.status === "failed") return "Failed.";
    if (data.status === "canceled") return "Canceled.";
    if (data.status === "finalizing") return "Rendering the final at " + costText(data.final_cost) + "\u2026";
    if (data.status === "done") {
      const t = renderTime(data.timings, "final");
      return "Final ready" + (t !== null ? " \u00b7 rendered in " + Portal.formatSeconds(t) : "") +
        " (" + costText(data.final_cost) + ").";
    }
    if (data.status === "preview_ready" && data.edit_version >= requested && pending === 0) {
      const t = renderTime(data.timings, "preview");
      return Portal.statusLabel(data.status) + (t !== null ? " \u00b7 last render took " + Portal.formatSeconds(t) : "") +
        " (" + costText(data.preview_cost) + ").";
    }
    const waited = waitingSince ? " " + Portal.formatSeconds((performance.now() - waitingSince) / 1000) : "";
    return (data.status === "queued" ? "Waiting for a worker" : "Rendering the preview") +
      " (" + costText(data.preview_cost) + ")\u2026" + waited;
  }

  function apply(data) {
    data = Portal.view(data);
    item = data;
    requested = Math.max(requested, data.edit_version);
    if (SHOWABLE.has(data.status) && data.edit_version === requested) showPreview(data.edit_version, data.urls.preview);
    if (data.status === "failed" || data.status === "canceled") awaiting = null;
    markPending();
    errorBox.hidden = !data.error_text;
    if (data.error_text) errorBox.textContent = data.error_text;
    document.getElementById("item-quality").textContent = data.quality_text || "";
    const finalLink = document.getElementById("final-link");
    finalLink.hidden = !data.urls.final;
    if (data.urls.final) finalLink.querySelector("a").href = data.urls.final;
    if (data.status === "done" && data.urls.final && shownSrc !== data.urls.final) {
      shownSrc = data.urls.final;  // the final in place of the preview
      previewImg.src = data.urls.final;
      document.getElementById("preview-caption").textContent = "Final";
      if (!view.before()) root.dataset.showing = "final";
    }
    const beforeSrc = data.urls[root.dataset.beforeKind];
    if (beforeSrc && !beforeImg.getAttribute("src")) beforeImg.src = beforeSrc;
    document.getElementById("retry").hidden = data.status !== "failed";
    if (finalQueued && previewSettled(data) && data.status === "preview_ready") finalize();
    root.dataset.finalQueued = String(finalQueued);
    say(describe(data));
    root.dataset.status = data.status;
    root.dataset.shownVersion = String(shown);
    showFaces(data.faces);
    pump();
  }

  function busy(data) {
    return pending > 0 || finalQueued || !SETTLED.has(data.status) || data.edit_version < requested
      || (SHOWABLE.has(data.status) && shown < requested);
  }

  const follower = Portal.follow({
    json: root.dataset.jsonUrl,
    events: root.dataset.eventsUrl,
    initial: JSON.parse(root.dataset.item),
    onData: apply,
    busy: busy,
    fastMs: 500,
    slowMs: null,
    onStream: function (up) { root.dataset.stream = up ? "open" : "down"; },
    onError: function (e) { say("Lost touch with the server (" + e.message + "); retrying\u2026"); },
    onEvent: function (kind, data) {
      strip.onEvent(kind, data, item.id);  // the other photos' frames
      if (kind === "snapshot" || kind === "batch.completed") return false;
      if (data.item_id !== item.id) return false;
      // A pushed preview of the newest edit is loaded at once, from the event alone; the
      // item's JSON (timings, quality) is fetched once the image is in.
      if (kind === "item.preview_ready") performance.mark("preview-event", { detail: data.edit_version });
      if (kind === "item.preview_ready" && data.edit_version === requested && pending === 0) {
        showPreview(data.edit_version, root.dataset.previewUrl + "?v=" + data.edit_version,
                    function () { follower.refresh(0); });
        return false;
      }
      return true;
    },
  });

  edits.sliders.forEach(function (s) {
    s.addEventListener("input", function () { edits.fromSliders(); moved(); });
  });
  document.getElementById("reset").addEventListener("click", function () { edits.resetAll(); send(); });

  /* Finalize: pressed while a preview renders, the final is queued after it (the page asks
     once the newest preview is ready) instead of a refusal. */
  function previewSettled(data) {
    return !scheduled && pending === 0 && data.edit_version >= requested &&
      (data.status === "preview_ready" || data.status === "done");
  }

  async function finalize() {
    finalQueued = false;
    say("Asking for the final\u2026");
    try {
      await Portal.request("POST", root.dataset.finalizeUrl, {});
      finalizing = true;
      waitingSince = performance.now();
    } catch (e) {
      errorBox.textContent = "Could not finalize: " + e.message;
      errorBox.hidden = false;
    }
    follower.refresh(200);
  }

  document.getElementById("finalize").addEventListener("click", function () {
    if (previewSettled(item) && item.status === "preview_ready") { finalize(); return; }
    finalQueued = true;
    root.dataset.finalQueued = "true";
    say("The final starts when this preview is ready\u2026");
    follower.refresh(follower.streaming() ? 3000 : 300);
  });

  document.getElementById("retry").addEventListener("click", async function () {
    say("Trying this photo again\u2026");
    try {
      await Portal.request("POST", root.dataset.retryUrl, {});
      errorBox.hidden = true;
    } catch (e) {
      errorBox.textContent = "Could not retry: " + e.message;
      errorBox.hidden = false;
    }
    follower.refresh(300);
  });

  /* --- the picture: zoom, pan, split, before --------------------------------------------- */
  const zoomLevel = document.getElementById("zoom-level");
  const view = StageView.create({
    viewport: document.getElementById("viewport"), canvas: document.getElementById("canvas"),
    after: previewImg, before: beforeImg, handle: document.getElementById("split-handle"),
    focus: focusPoint,
    onZoom: function (s, label) { zoomLevel.textContent = label; root.dataset.zoom = String(s); },
  });
  const tools = StageView.bindTools(view, root, function () {
    return shownSrc && item.urls.final === shownSrc ? "final" : "preview";
  });
  previewImg.addEventListener("load", function () { faceBoxes.place(); });

  document.addEventListener("keydown", function (e) {
    if (!(e.ctrlKey || e.metaKey) || e.altKey) return;
    const key = e.key.toLowerCase();
    if (key === "z") { e.preventDefault(); if (e.shiftKey) edits.redo(); else edits.undo(); }
    else if (key === "y") { e.preventDefault(); edits.redo(); }
  });

  apply(item);
  tools.refresh();
})();
