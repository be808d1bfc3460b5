/* Generate: new images from seeds through the REST API (session cookie + CSRF header), the grid
   filled in as previews render (Portal.follow: the batch's events, polling without them); each
   sample opens in the item editor. */
"use strict";

(function () {
  const form = document.getElementById("generate");
  if (!form) return;
  const grid = document.getElementById("samples");
  const status = document.getElementById("generate-status");
  const errorBox = document.getElementById("generate-error");
  const modelSelect = document.getElementById("model");
  const modelInfo = document.getElementById("model-info");
  const batchLink = document.getElementById("batch-link");
  const truncation = document.getElementById("truncation");
  const truncationOut = document.getElementById("truncation-out");
  let models = {};
  let following = null;

  truncation.addEventListener("input", function () {
    truncationOut.textContent = Number(truncation.value).toFixed(2);
  });

  function describe(name) {
    const m = models[name];
    modelInfo.textContent = m ? (m.resolution + " px" + (m.pretrained ? "" : ", random weights") +
      (m.files.discriminator ? ", realism scores" : "") +
      (m.directions.length ? ", " + m.directions.length + " directions" : "")) : "";
  }

  Portal.request("GET", Portal.url("models")).then(function (data) {
    models = {};
    modelSelect.replaceChildren();
    for (const m of data.models) {
      models[m.name] = m;
      const option = document.createElement("option");
      option.value = m.name;
      option.textContent = m.name + (m.default ? " (default)" : "");
      option.selected = m.default;
      modelSelect.appendChild(option);
    }
    if (!data.models.length) errorBox.textContent = "No worker is running right now: nothing can be generated.";
    describe(modelSelect.value);
  }).catch(function (e) { errorBox.textContent = e.message; });
  modelSelect.addEventListener("change", function () { describe(modelSelect.value); });

  function body() {
    const out = { truncation: Number(truncation.value), model: modelSelect.value || undefined };
    const name = document.getElementById("batch-name").value.trim();
    if (name) out.name = name;
    if (form.elements.mode.value === "seeds") {
      const text = document.getElementById("seeds").value.trim();
      out.synthesis = { seeds: text ? text.split(/[\s,]+/).map(Number) : [] };
    } else {
      out.synthesis = { count: Number(document.getElementById("count").value) };
    }
    if (document.getElementById("mix-on").checked) {
      out.mix = { seed: Number(document.getElementById("mix-seed").value),
                  from_slot: Number(document.getElementById("mix-slot").value) };
    }
    return out;
  }

  function card(item) {
    const li = document.createElement("li");
    li.className = "item sample";
    li.dataset.itemId = item.id;
    li.dataset.status = item.status;
    const title = document.createElement("h2");
    title.className = "filename";
    title.textContent = "Seed " + item.seed;
    const picture = document.createElement("div");
    picture.className = "thumb-preview";
    const link = document.createElement("a");
    link.href = Portal.url("item_page", item.id);
    link.textContent = "Open in the editor";
    link.className = "button small";
    const state = document.createElement("p");
    state.className = "hint";
    state.dataset.role = "status";
    li.append(title, picture, state, link);
    return li;
  }

  function update(batch) {
    let ready = 0;
    for (const item of batch.items) {
      const li = grid.querySelector('[data-item-id="' + item.id + '"]') || grid.appendChild(card(item));
      li.dataset.status = item.status;
      li.querySelector('[data-role="status"]').textContent = Portal.statusLabel(item.status);
      const box = li.querySelector(".thumb-preview");
      if (item.preview_url && box.dataset.url !== item.preview_url) {
        const img = document.createElement("img");
        img.src = item.preview_url;
        img.alt = "Generated from seed " + item.seed;
        box.replaceChildren(img);
        box.dataset.url = item.preview_url;
      }
      if (item.preview_url) ready += 1;
    }
    status.textContent = ready + " of " + batch.items.length + " rendered";
  }

  function settled(batch) {
    return batch.items.every(function (i) { return ["failed", "canceled", "done", "preview_ready"].includes(i.status); });
  }

  function watch(batchId) {
    if (following) following.stop();
    following = Portal.follow({
      json: Portal.url("batch", batchId), events: Portal.url("batch_events", batchId),
      onData: update, busy: function (batch) { return !settled(batch); }, slowMs: null,
    });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    errorBox.textContent = "";
    const button = document.getElementById("generate-button");
    button.disabled = true;
    Portal.request("POST", Portal.url("batches"), body()).then(function (made) {
      grid.replaceChildren();
      for (const item of made.items) grid.appendChild(card(item));
      status.textContent = "Rendering " + made.items.length + " images (seeds " + made.seeds.join(", ") + ")";
      batchLink.href = Portal.url("batch_page", made.id);
      batchLink.hidden = false;
      watch(made.id);
    }).catch(function (err) {
      errorBox.textContent = err.message;
    }).finally(function () { button.disabled = false; });
  });
})();
