/* Batch page: teach a direction. Each card gets "Has it / Lacks it / Not used"; with enough of
   each (photos with a preview: they have a code) and a name, POST the directions URL
   {"name", "positive", "negative"} (REST API v1 learns it from the items' codes) and say where
   the new slider is. */
"use strict";

(function () {
  const box = document.getElementById("learn-box");
  if (!box) return;
  const start = document.getElementById("learn-start");
  const form = document.getElementById("learn-form");
  const nameInput = document.getElementById("learn-name");
  const submit = document.getElementById("learn-submit");
  const counts = document.getElementById("learn-counts");
  const status = document.getElementById("learn-status");
  const items = document.getElementById("items");
  const min = Number(counts.dataset.min);

  function picks() {
    const out = { with: [], without: [] };
    items.querySelectorAll(".item").forEach(function (li) {
      const chosen = li.querySelector('[data-role="learn"] input:checked');
      if (chosen && chosen.value && !chosen.disabled) out[chosen.value].push(li.dataset.itemId);
    });
    return out;
  }

  /* Only photos with a preview have a code to learn from. */
  function pickable(li) { return Portal.config.preview_shown.indexOf(li.dataset.status) !== -1; }

  function refresh() {
    items.querySelectorAll(".item").forEach(function (li) {
      const off = !pickable(li);
      li.querySelectorAll('[data-role="learn"] input').forEach(function (input) {
        input.disabled = off && input.value !== "";
      });
    });
    const p = picks();
    counts.querySelector('[data-role="with"]').textContent = p.with.length;
    counts.querySelector('[data-role="without"]').textContent = p.without.length;
    const enough = p.with.length >= min && p.without.length >= min;
    submit.disabled = !enough || !nameInput.checkValidity();
    submit.title = enough ? "" : "Mark at least " + min + " photos each way";
  }

  function show(on) {
    box.hidden = !on;
    start.setAttribute("aria-expanded", String(on));
    items.classList.toggle("learning", on);
    items.querySelectorAll('[data-role="learn"]').forEach(function (f) { f.hidden = !on; });
    if (on) { refresh(); nameInput.focus(); }
  }

  start.addEventListener("click", function () { show(box.hidden); });
  document.getElementById("learn-cancel").addEventListener("click", function () { show(false); start.focus(); });
  items.addEventListener("change", refresh);
  items.addEventListener("item-updated", refresh);
  nameInput.addEventListener("input", refresh);

  form.addEventListener("submit", async function (e) {
    e.preventDefault();
    const p = picks();
    submit.disabled = true;
    status.textContent = "Learning\u2026";
    try {
      const made = await Portal.request("POST", Portal.url("directions"),
                                        { name: nameInput.value.trim(), positive: p.with, negative: p.without });
      status.replaceChildren("Learned \u201c" + made.name + "\u201d from " + p.with.length + " + " +
        p.without.length + " photos (" + Math.round(made.accuracy * 100) + "% of them on the right side). " +
        "It is a slider in the editor under \u201cLearned directions\u201d: ");
      const link = document.createElement("a");
      link.href = Portal.url("item_page", p.with[0]);
      link.textContent = "open one";
      status.append(link, ".");
      box.dataset.learned = made.key;
    } catch (err) {
      status.textContent = "Not learned: " + err.message;
    } finally {
      refresh();
    }
  });
})();
