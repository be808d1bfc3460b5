/* Item editor: moving a slider asks for a new preview (debounced). New results are pushed: the
   page listens to the batch's event stream (server-sent events of REST API v1) and fetches the
   item when an event names it; it polls slowly only as a fallback (and fast while the stream
   is down). Every request gets a new
   edit_version from the server; the page shows a preview only when it belongs to the newest
   version asked for, and never swaps in an image older than the one on screen, whatever order
   responses and image loads arrive in. The status line says what is running and how long the
   last render took, like the original editor's status bar.
   Several faces: the sliders edit all faces (the item's edits) or the face picked on the photo
   (that face's override, sent with "face"); the page keeps both in `model` and an undo step
   puts back the whole model and the face it changed. */
"use strict";

(function () {
  const root = document.getElementById("editor");
  if (!root) return;
  const costs = JSON.parse(root.dataset.costs);
  const recipeEdits = JSON.parse(root.dataset.recipeEdits);
  let item = JSON.parse(root.dataset.item);
  const previewImg = document.getElementById("preview-img");
  const statusLine = document.getElementById("status-line");
  const errorBox = document.getElementById("item-error");
  const SCALE = 100;
  const SETTLED = new Set(["preview_ready", "done", "failed", "canceled"]);
  const SHOWABLE = new Set(["preview_ready", "finalizing", "done"]);

  let requested = item.edit_version;               // newest version this page asked for (or saw)
  let shown = Number(previewImg.dataset.version);  // version of the preview on screen
  let pending = 0;                                 // edit requests not answered yet
  let waitingSince = null;                         // when the current render was asked for
  let pollTimer = null;
  let finalizing = item.status === "finalizing";
  let shownSrc = previewImg.getAttribute("src");
  let shownLabel = "Preview";

  Portal.bindSliderOutputs(root);
  const previewCost = Portal.bindCost(root, "preview", costs, function () { requestPreview(); });
  const sliders = Array.from(root.querySelectorAll('input[type="range"][data-attr]'));

  function say(text) { statusLine.textContent = text; }

  function costText(cost) {
    return Math.round(cost.channels * 100) + "% channels, " + cost.resolution + " px";
  }

  function renderTime(timings, stage) {
    // The worker names its stages; pick the render of this stage when it is there.
    const keys = Object.keys(timings || {});
    const key = keys.find(function (k) { return k === stage + "_render" || k === "render_" + stage; })
      || keys.find(function (k) { return k.indexOf(stage) !== -1; });
    return key ? timings[key] : null;
  }

  function currentEdits() {
    const edits = {};
    sliders.forEach(function (s) {
      const v = Number(s.value);
      if (v !== 0) edits[s.dataset.attr] = v / SCALE;
    });
    return edits;
  }

  /* What the sliders edit: the item's edits ("shared", every face without an override) and
     the per-face overrides (face index as text -> edits), as the server stores them. */
  let model = { shared: Object.assign({}, item.edits || {}), faces: Object.assign({}, item.face_edits || {}) };
  let selectedFace = null;  // null: all faces

  function copyModel(m) { return JSON.parse(JSON.stringify(m)); }

  function editsShown(face) {
    const key = String(face);
    return face !== null && key in model.faces ? model.faces[key] : model.shared;
  }

  /* The sliders moved: they now hold the selected scope's edits. An empty override is none
     (the server removes it: the face follows the item's edits again). */
  function slidersToModel() {
    const edits = currentEdits();
    if (selectedFace === null) {
      model.shared = edits;
    } else if (Object.keys(edits).length) {
      model.faces[String(selectedFace)] = edits;
    } else {
      delete model.faces[String(selectedFace)];
    }
    describeScope();
  }

  function setSliders(edits) {
    sliders.forEach(function (s) {
      s.value = String(Math.round((edits[s.dataset.attr] || 0) * SCALE));
      const out = document.getElementById(s.id + "-out");
      if (out) out.textContent = s.value;
    });
  }

  /* The request for the selected scope: a face always names itself, so a face without an
     override stays without one (its empty edits remove nothing). */
  function editBody() {
    if (selectedFace === null) return { edits: model.shared, preview: previewCost() };
    return { edits: model.faces[String(selectedFace)] || {}, face: selectedFace, preview: previewCost() };
  }

  /* Undo: the model before each change the user made, and the face that change was for. */
  const history = [];
  const undoButton = document.getElementById("undo");
  let lastModel = copyModel(model);

  function remember() {
    if (JSON.stringify(model) === JSON.stringify(lastModel)) return;
    history.push({ face: selectedFace, model: lastModel });
    lastModel = copyModel(model);
    undoButton.disabled = false;
  }

  undoButton.addEventListener("click", function () {
    const step = history.pop();
    if (!step) return;
    model = step.model;
    lastModel = copyModel(model);
    showFace(step.face);
    undoButton.disabled = history.length === 0;
    requestPreview();
  });

  /* Faces: outlines on the photo (the preview when it is the photo, else the original) and
     an "All faces" button; shown for two faces or more. */
  const facePicker = document.getElementById("face-picker");
  const allFaces = document.getElementById("all-faces");
  const faceScope = document.getElementById("face-scope");
  const faceImg = root.dataset.output === "photo" ? previewImg : document.getElementById("original-img");
  const faceBoxes = faceImg ? FaceBoxes.create(faceImg, pickFace) : null;
  let knownFaces = "null";

  function showFaces(faces) {
    const text = JSON.stringify(faces || null);
    if (!faceBoxes || text === knownFaces) return;
    knownFaces = text;
    const several = Array.isArray(faces) && faces.length > 1;
    facePicker.hidden = !several;
    faceBoxes.show(several ? faces : []);
    if (selectedFace !== null && !(several && selectedFace < faces.length)) showFace(null);
    else faceBoxes.select(selectedFace);
  }

  /* Select a scope and load its sliders (no request: nothing changed yet). */
  function showFace(face) {
    selectedFace = face;
    setSliders(editsShown(face));
    allFaces.setAttribute("aria-pressed", String(face === null));
    if (faceBoxes) faceBoxes.select(face);
    root.dataset.face = face === null ? "all" : String(face);
    describeScope();
  }

  function describeScope() {
    const face = selectedFace;
    const own = face !== null && String(face) in model.faces;
    faceScope.textContent = face === null
      ? "Editing all faces (except those with edits of their own). Pick a face on the photo to edit it alone."
      : "Editing face " + (face + 1) + (own ? " alone." : ": it has the shared edits until you move a slider.");
  }

  function pickFace(face) {
    if (face === selectedFace) return;
    if (scheduled) requestPreview();  // the last slider move goes out for the face it was for
    remember();
    showFace(face);
  }
  allFaces.addEventListener("click", function () { pickFace(null); });

  async function requestPreview() {
    scheduled = false;
    pending += 1;
    waitingSince = performance.now();
    say("Asking for a new preview (" + costText(previewCost()) + ")\u2026");
    try {
      const answer = await Portal.request("POST", root.dataset.editsUrl, editBody());
      // Answers may come back out of order: the newest version wins.
      requested = Math.max(requested, answer.edit_version);
      errorBox.hidden = true;
    } catch (e) {
      errorBox.textContent = "Could not ask for a preview: " + e.message;
      errorBox.hidden = false;
    } finally {
      pending -= 1;
    }
    schedulePoll(streamUp ? 3000 : 300);
  }
  // A move already sent (the face changed meanwhile) is not sent twice.
  const debounced = Portal.debounce(function () { if (scheduled) requestPreview(); }, 350);
  let scheduled = false;  // a slider moved; its preview request has not gone out yet
  function requestPreviewSoon() {
    scheduled = true;
    debounced();
  }

  /* ``then``: called once the image has loaded (or failed to). */
  function showPreview(data, then) {
    const version = data.edit_version;
    const src = data.urls.preview;
    if (!src || version <= shown) { if (then) then(); return; }
    // Load off-screen first; only a still-newest image replaces the one on screen.
    const loader = new Image();
    loader.onerror = function () { if (then) then(); };
    loader.onload = function () {
      if (then) then();
      if (version <= shown) return;
      shown = version;
      shownSrc = src;
      shownLabel = "Preview";
      if (!showingBefore) previewImg.src = src;
      previewImg.dataset.version = String(version);
      document.getElementById("preview-version").textContent = "(version " + version + ")";
    };
    loader.src = src;
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
      return "Preview ready" + (t !== null ? " \u00b7 last render took " + Portal.formatSeconds(t) : "") +
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
    if (SHOWABLE.has(data.status) && data.edit_version === requested) showPreview(data);
    errorBox.hidden = !data.error_text;
    if (data.error_text) errorBox.textContent = data.error_text;
    document.getElementById("item-quality").textContent = data.quality_text || "";
    const finalLink = document.getElementById("final-link");
    finalLink.hidden = !data.urls.final;
    if (data.urls.final) finalLink.querySelector("a").href = data.urls.final;
    if (data.status === "done" && data.urls.final && shownSrc !== data.urls.final) {
      // The final in place of the preview.
      shownSrc = data.urls.final;
      shownLabel = "Final";
      if (!showingBefore) previewImg.src = data.urls.final;
      document.getElementById("preview-caption").textContent = "Final";
      root.dataset.showing = "final";
    }
    document.getElementById("retry").hidden = data.status !== "failed";
    if (finalQueued && previewSettled(data) && data.status === "preview_ready") finalize();
    root.dataset.finalQueued = String(finalQueued);
    say(describe(data));
    root.dataset.status = data.status;
    root.dataset.shownVersion = String(shown);
    showFaces(data.faces);
  }

  let streamUp = false;

  function listen() {
    if (!window.EventSource || !root.dataset.eventsUrl) return;
    const source = new EventSource(root.dataset.eventsUrl);
    source.onopen = function () { streamUp = true; };
    source.onerror = function () { streamUp = false; };  // EventSource reconnects by itself
    ["item.preview_ready", "item.done", "item.failed"].forEach(function (kind) {
      source.addEventListener(kind, function (e) {
        let data = null;
        try { data = JSON.parse(e.data); } catch (err) { return; }
        if (data.item_id !== item.id) return;
        // A pushed preview of the newest edit is loaded at once, from the event alone; the
        // item's JSON (timings, quality) is fetched once the image is in.
        if (kind === "item.preview_ready" && data.edit_version === requested && pending === 0) {
          showPreview({ edit_version: data.edit_version,
                        urls: { preview: root.dataset.previewUrl + "?v=" + data.edit_version } },
                      function () { schedulePoll(0); });
          return;
        }
        schedulePoll(0);
      });
    });
  }

  async function poll() {
    pollTimer = null;
    try {
      apply(await Portal.request("GET", root.dataset.jsonUrl));
    } catch (e) {
      say("Lost touch with the server (" + e.message + "); retrying\u2026");
    }
    const busy = pending > 0 || !SETTLED.has(item.status) || item.edit_version < requested
      || (SHOWABLE.has(item.status) && shown < requested);
    // Pushed events bring the result; the slow poll only covers a lost event.
    if (busy) schedulePoll(streamUp ? 3000 : 500);
  }

  function schedulePoll(ms) {
    if (pollTimer !== null) clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, ms);
  }

  sliders.forEach(function (s) {
    s.addEventListener("input", function () {
      slidersToModel();
      requestPreviewSoon();
    });
    s.addEventListener("change", remember);
  });

  document.getElementById("reset").addEventListener("click", function () {
    setSliders(recipeEdits);
    slidersToModel();
    remember();
    requestPreview();
  });

  /* Finalize: pressed while a preview renders, the final is queued after it (the page asks
     once the newest preview is ready) instead of a refusal. */
  let finalQueued = false;

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
    schedulePoll(200);
  }

  document.getElementById("finalize").addEventListener("click", function () {
    if (previewSettled(item) && item.status === "preview_ready") {
      finalize();
      return;
    }
    finalQueued = true;
    root.dataset.finalQueued = "true";
    say("The final starts when this preview is ready\u2026");
    schedulePoll(streamUp ? 3000 : 300);
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
    schedulePoll(300);
  });

  /* Before/after: the original in place of the edit; zoom: the edited picture alone, full size. */
  const beforeAfter = document.getElementById("before-after");
  let showingBefore = false;
  function toggleBefore() {
    showingBefore = !showingBefore;
    beforeAfter.setAttribute("aria-pressed", String(showingBefore));
    previewImg.src = showingBefore ? item.urls.original : (shownSrc || previewImg.src);
    root.dataset.showing = showingBefore ? "before" : "after";
    document.getElementById("preview-caption").textContent = showingBefore ? "Original" : shownLabel;
  }
  beforeAfter.addEventListener("click", toggleBefore);
  document.addEventListener("keydown", function (e) {
    if (e.key === "b" && !(e.target instanceof HTMLInputElement)) toggleBefore();
  });
  document.getElementById("zoom").addEventListener("click", function () {
    const zoomed = document.querySelector(".editor-images").classList.toggle("zoomed");
    this.setAttribute("aria-pressed", String(zoomed));
    if (faceBoxes) faceBoxes.place();
  });

  listen();
  apply(item);
  if (finalizing || !SETTLED.has(item.status)) schedulePoll(500);
})();
