/* Batch page: polls the batch's JSON (REST API v1, signed in by the session cookie) and updates the progress bar, the counts and each item's
   status, error, render times and thumbnails in place. Polls fast while something is rendering,
   slowly otherwise, and not at all while the tab is hidden. */
"use strict";

(function () {
  const root = document.getElementById("batch");
  if (!root) return;
  const url = root.dataset.jsonUrl;
  const KINDS = ["original", "projected", "preview", "final"];
  const ACTIVE = new Set(["queued", "running"]);
  const LABELS = { queued: "Queued", previewing: "Rendering preview", preview_ready: "Preview ready",
                   finalizing: "Rendering final", done: "Done", failed: "Failed", canceled: "Canceled" };
  let timer = null;
  let inFlight = false;

  function setStatus(el, status, label) {
    el.className = "status status-" + status;
    el.textContent = label;
  }

  function updateThumb(li, item, kind) {
    const figure = li.querySelector(".thumb-" + kind);
    const src = item.urls[kind];
    if (!figure || !src) return;
    let img = figure.querySelector("img");
    if (img && img.getAttribute("src") === src) return;
    if (!img) {
      const link = document.createElement("a");
      img = document.createElement("img");
      img.alt = kind.charAt(0).toUpperCase() + kind.slice(1) + " of " + item.filename;
      link.appendChild(img);
      const placeholder = figure.querySelector(".placeholder");
      if (placeholder) placeholder.replaceWith(link); else figure.prepend(link);
    }
    img.src = src;
    img.parentElement.href = src;
  }

  function updateItem(item) {
    item = Portal.view(item);
    const li = document.getElementById("item-" + item.id);
    if (!li) return;
    li.dataset.status = item.status;
    setStatus(li.querySelector('[data-role="status"]'), item.status, item.status_label);
    const err = li.querySelector('[data-role="error"]');
    err.textContent = item.error_text || "";
    err.hidden = !item.error_text;
    li.querySelector('[data-role="quality"]').textContent = item.quality_text || "";
    li.querySelector('[data-role="timings"]').textContent = Object.entries(item.timings)
      .map(function ([stage, s]) { return stage.replace(/_/g, " ") + " " + Portal.formatSeconds(s); })
      .join(" \u00b7 ");
    KINDS.forEach(function (kind) { updateThumb(li, item, kind); });
  }

  function updateCounts(counts) {
    const box = document.getElementById("batch-counts");
    box.replaceChildren();
    Object.entries(counts).forEach(function ([status, n]) {
      if (!n) return;
      const span = document.createElement("span");
      span.className = "count count-" + status;
      span.dataset.status = status;
      span.append(LABELS[status] + ": ");
      const b = document.createElement("b");
      b.textContent = n;
      span.appendChild(b);
      box.append(span, " ");
    });
  }

  /* As web/portal/present.py's batch_label: "Done, 2 failed". */
  function batchLabel(batch) {
    let label = Portal.statusLabel(batch.status);
    if (["done", "preview_ready", "running"].indexOf(batch.status) !== -1) {
      const extra = ["failed", "canceled"].filter(function (k) { return batch.counts[k]; })
        .map(function (k) { return batch.counts[k] + " " + k; });
      if (extra.length) label += ", " + extra.join(", ");
    }
    return label;
  }

  function update(batch) {
    document.getElementById("batch-progress").value = batch.progress;
    document.getElementById("batch-pct").textContent = Math.round(batch.progress * 100) + "%";
    setStatus(document.getElementById("batch-status"), batch.status, batchLabel(batch));
    updateCounts(batch.counts);
    batch.items.forEach(updateItem);
    // Sorted by realism, the order changes as scores arrive: follow the server's order, but
    // touch the list only when it changed (moving a node would drop the keyboard focus).
    const list = document.getElementById("items");
    const wanted = batch.items.map(function (item) { return "item-" + item.id; });
    const shown = Array.from(list.children).map(function (li) { return li.id; });
    if (wanted.join() !== shown.join()) {
      wanted.forEach(function (id) {
        const li = document.getElementById(id);
        if (li) list.appendChild(li);
      });
    }
    const zip = document.getElementById("download-zip");
    const finals = batch.items.filter(function (i) { return i.status === "done" && i.final_url; }).length;
    document.getElementById("finals-count").textContent = finals;
    zip.classList.toggle("disabled", !finals);
    if (finals) zip.removeAttribute("aria-disabled"); else zip.setAttribute("aria-disabled", "true");
    root.dataset.status = batch.status;
  }

  async function poll() {
    if (inFlight) return;
    inFlight = true;
    timer = null;
    let delay = 1500;
    try {
      const batch = await Portal.request("GET", url);
      update(batch);
      // Finalizing items keep the batch "running"; otherwise it is idle until the user acts.
      if (!ACTIVE.has(batch.status)) delay = 10000;
    } catch (e) {
      delay = 5000;
    } finally {
      inFlight = false;
    }
    if (!document.hidden && timer === null) timer = setTimeout(poll, delay);
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && timer === null && !inFlight) poll();
  });
  document.getElementById("download-zip").addEventListener("click", function (e) {
    if (this.classList.contains("disabled")) e.preventDefault();
  });
  poll();
})();
