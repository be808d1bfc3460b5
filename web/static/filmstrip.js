/* The editor's filmstrip, kept current by the batch's pushed events (item.js hands them on):
   another photo's preview, final or failure, or a stream's opening snapshot that disagrees with
   a frame, reloads the batch's JSON once (a burst of events is one load) and updates each
   frame's picture and status in place. No polling: without events nothing is loaded. */
"use strict";

window.Filmstrip = (function () {
  /* ``nav``: the <nav class="filmstrip">; ``batchUrl``: the batch's JSON (REST API v1). */
  function create(nav, batchUrl) {
    if (!nav) return { onEvent: function () {}, showCurrent: function () {} };
    let timer = null, loading = false, again = false;

    function frames() {
      const out = {};
      nav.querySelectorAll(".frame a[data-item-id]").forEach(function (a) { out[a.dataset.itemId] = a; });
      return out;
    }

    /* The frame's picture: the preview, else the original, else the projection (as
       web/portal/workspace.py's filmstrip). */
    function setPicture(a, src, name) {
      const img = a.querySelector("img");
      if (!src) return;
      if (img) {
        if (img.getAttribute("src") !== src) img.src = src;
        return;
      }
      const made = document.createElement("img");
      made.src = src;
      made.alt = name;
      a.replaceChildren(made);
    }

    function setStatus(a, status) {
      const li = a.closest(".frame");
      li.className = "frame status-" + status;
      a.dataset.status = status;
    }

    function update(batch) {
      const shown = frames();
      batch.items.forEach(function (item) {
        const a = shown[item.id];
        if (!a) return;
        setStatus(a, item.status);
        if (a.getAttribute("aria-current") === "page") return;  // item.js shows this one's own
        setPicture(a, item.preview_url || item.original_url || item.projected_url, item.filename);
      });
      nav.dataset.updates = String(Number(nav.dataset.updates || 0) + 1);
    }

    async function load() {
      timer = null;
      if (loading) { again = true; return; }
      loading = true;
      try {
        update(await Portal.request("GET", batchUrl));
      } catch (e) {
        /* the next event loads again */
      } finally {
        loading = false;
      }
      if (again) { again = false; schedule(); }
    }

    function schedule() { if (timer === null) timer = setTimeout(load, 50); }

    /* An event of the batch's stream: reload when it names another photo or, for the
       snapshot, when a photo's status is not the one its frame shows. */
    function onEvent(kind, data, currentId) {
      if (kind === "snapshot") {
        const shown = frames();
        const stale = (data.items || []).some(function (item) {
          const a = shown[item.id];
          return a && item.id !== currentId && a.dataset.status !== item.status;
        });
        if (stale) schedule();
        return;
      }
      if (data && data.item_id && data.item_id !== currentId && frames()[data.item_id]) schedule();
    }

    /* The current photo's frame shows what the editor shows. */
    function showCurrent(src) {
      const a = nav.querySelector('.frame a[aria-current="page"]');
      if (a) setPicture(a, src, a.title);
    }

    return { onEvent: onEvent, showCurrent: showCurrent };
  }

  return { create: create };
})();
