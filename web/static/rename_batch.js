/* Batch page: the Rename control. PATCH /api/v1/batches/<id> {"name": ...} through the REST API
   (session cookie + CSRF header); the heading and the tab's title follow the saved name. */
"use strict";

(function () {
  const form = document.getElementById("rename-batch");
  if (!form) return;
  const input = document.getElementById("batch-name");
  const title = document.getElementById("batch-title");
  const status = document.getElementById("rename-status");
  const button = document.getElementById("rename-button");

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    button.disabled = true;
    status.textContent = "Saving\u2026";
    Portal.request("PATCH", form.dataset.url, { name: input.value }).then(function (batch) {
      const shown = batch.name || title.dataset.untitled;
      title.textContent = shown;  // textContent: names are never HTML
      const cut = document.title.lastIndexOf(" \u00b7 ");  // "<title> · Anycost"
      document.title = shown + (cut >= 0 ? document.title.slice(cut) : "");
      input.value = batch.name || "";
      input.removeAttribute("aria-invalid");
      status.textContent = batch.name ? "Renamed." : "Name cleared.";
    }).catch(function (err) {
      input.setAttribute("aria-invalid", "true");
      status.textContent = "Not renamed: " + err.message;
    }).finally(function () { button.disabled = false; });
  });
})();
