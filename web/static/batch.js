/* Batch page: follows the batch (Portal.follow: pushed events, polling only without them) and
   updates in place the status, the progress in words and bars, and each card: its preview and
   final side by side (whole photos), its status and error, and behind "Show details" the
   original, the projection, the quality line and the render timings. Cards follow the
   server's order (most realistic first when asked). */
"use strict";

(function () {
  const root = document.getElementById("batch");
  if (!root) return;
  const ACTIVE = new Set(["queued", "running"]);
  const items = document.getElementById("items");

  function setStatus(el, status, label) {
    el.className = "status status-" + status;
    el.textContent = label;
  }

  function caption(kind) { return kind.charAt(0).toUpperCase() + kind.slice(1); }

  /* One image of a card; ``standin``: the kind shown (dimmed) while ``kind`` is missing. */
  function updatePicture(li, item, kind, standin, missing) {
    const figure = li.querySelector(".thumb-" + kind);
    if (!figure) return;
    const shown = item.urls[kind] ? kind : (standin && item.urls[standin] ? standin : null);
    const src = shown ? item.urls[shown] : null;
    const current = figure.querySelector("img");
    if (current && current.getAttribute("src") === src) return;
    let node;
    if (!src) {
      node = document.createElement("div");
      node.className = "placeholder";
      node.setAttribute("aria-hidden", "true");
      node.textContent = missing || "\u2014";
    } else {
      const img = document.createElement("img");
      img.src = src;
      img.dataset.kind = shown;
      img.alt = caption(shown) + " of " + item.filename + (shown === kind ? "" : " (no " + kind + " yet)");
      if (shown === kind) {
        node = document.createElement("a");
        node.href = src;
        node.appendChild(img);
      } else {
        img.className = "standin";
        node = img;
      }
    }
    const old = figure.querySelector("a, img, .placeholder");
    if (old) old.replaceWith(node); else figure.prepend(node);
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
    updatePicture(li, item, "preview", "original");
    updatePicture(li, item, "final", null, "Not finalized");
    updatePicture(li, item, "original");
    updatePicture(li, item, "projected");
    li.dispatchEvent(new CustomEvent("item-updated", { bubbles: true, detail: item }));
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
    const total = batch.items.length;
    const previews = batch.items.filter(function (i) { return Portal.config.preview_shown.indexOf(i.status) !== -1; }).length;
    const finals = batch.items.filter(function (i) { return i.status === "done" && i.final_url; }).length;
    document.getElementById("batch-progress-text").textContent = Portal.progressText(batch.counts);
    [["previews-progress", previews], ["finals-progress", finals]].forEach(function ([id, n]) {
      const bar = document.getElementById(id);
      bar.max = total || 1;
      bar.value = n;
    });
    setStatus(document.getElementById("batch-status"), batch.status, batchLabel(batch));
    batch.items.forEach(updateItem);
    // Sorted by realism, the order changes as scores arrive: follow the server's order, but
    // touch the list only when it changed (moving a node would drop the keyboard focus).
    const wanted = batch.items.map(function (item) { return "item-" + item.id; });
    const shown = Array.from(items.children).map(function (li) { return li.id; });
    if (wanted.join() !== shown.join()) {
      wanted.forEach(function (id) {
        const li = document.getElementById(id);
        if (li) items.appendChild(li);
      });
    }
    const zip = document.getElementById("download-zip");
    document.getElementById("finals-count").textContent = finals;
    zip.classList.toggle("disabled", !finals);
    if (finals) zip.removeAttribute("aria-disabled"); else zip.setAttribute("aria-disabled", "true");
    root.dataset.status = batch.status;
    root.dataset.updates = String(Number(root.dataset.updates || 0) + 1);
  }

  const details = document.getElementById("show-details");
  details.addEventListener("click", function () {
    const on = items.classList.toggle("show-details");
    details.setAttribute("aria-pressed", String(on));
    details.textContent = on ? "Hide details" : "Show details";
  });
  document.getElementById("download-zip").addEventListener("click", function (e) {
    if (this.classList.contains("disabled")) e.preventDefault();
  });

  Portal.follow({
    json: root.dataset.jsonUrl,
    events: root.dataset.eventsUrl,
    onData: update,
    // Finalizing items keep the batch "running"; otherwise it is idle until the user acts.
    busy: function (batch) { return ACTIVE.has(batch.status); },
    fastMs: 1500,
    onStream: function (up) { root.dataset.stream = up ? "open" : "down"; },
  });
})();
