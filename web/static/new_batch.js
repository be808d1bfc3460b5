/* New batch: drag and drop onto the file chooser, type and size checks before upload (the server
   checks again), slider read-outs and the cost read-outs. */
"use strict";

(function () {
  const form = document.getElementById("new-batch");
  if (!form) return;
  const input = document.getElementById("files");
  const zone = document.getElementById("dropzone");
  const list = document.getElementById("file-list");
  const problemsBox = document.getElementById("files-problems");
  const maxFileBytes = Number(form.dataset.maxFileMb) * 1024 * 1024;
  const maxUploadBytes = Number(form.dataset.maxUploadMb) * 1024 * 1024;
  const maxFiles = Number(form.dataset.maxFiles);
  const costs = JSON.parse(form.dataset.costs);
  const TYPES = ["image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff", "image/gif",
                 "image/heic", "image/heif", "image/avif"];
  const EXTENSIONS = /\.(jpe?g|png|webp|bmp|tiff?|gif|hei[cf]|avif)$/i;

  Portal.bindSliderOutputs(form);
  Portal.bindCost(form, "preview", costs);
  Portal.bindCost(form, "final", costs);

  function mb(bytes) { return (bytes / 1024 / 1024).toFixed(1) + " MB"; }

  /* Problems with the chosen files, as sentences that say what to do. */
  function check(files) {
    const problems = [];
    let total = 0;
    for (const f of files) {
      total += f.size;
      // Browsers leave the type empty for formats they do not know (HEIC on some systems).
      const unknownType = !f.type || f.type === "application/octet-stream";
      if (!(TYPES.includes(f.type) || (unknownType && EXTENSIONS.test(f.name)))) {
        problems.push(f.name + ": not a photo (" + (f.type || "unknown type") + "). Use JPEG, PNG, WebP, BMP, TIFF or GIF.");
      } else if (f.size === 0) {
        problems.push(f.name + ": the file is empty.");
      } else if (f.size > maxFileBytes) {
        problems.push(f.name + ": " + mb(f.size) + " is more than the " + mb(maxFileBytes) + " allowed per photo.");
      }
    }
    if (files.length > maxFiles) problems.push(files.length + " photos chosen; a batch takes at most " + maxFiles + ".");
    if (total > maxUploadBytes) problems.push("Together the photos are " + mb(total) + "; one batch may upload at most " + mb(maxUploadBytes) + ". Split them into several batches.");
    return problems;
  }

  function render() {
    const files = Array.from(input.files);
    list.replaceChildren();
    for (const f of files) {
      const li = document.createElement("li");
      li.textContent = f.name + " (" + mb(f.size) + ")";  // textContent: names are never HTML
      list.appendChild(li);
    }
    const problems = check(files);
    problemsBox.replaceChildren();
    for (const p of problems) {
      const para = document.createElement("p");
      para.textContent = p;
      problemsBox.appendChild(para);
    }
    input.setAttribute("aria-invalid", problems.length ? "true" : "false");
    return problems;
  }

  input.addEventListener("change", render);
  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function () { zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (e) {
    e.preventDefault();
    if (!e.dataTransfer || !e.dataTransfer.files.length) return;
    const merged = new DataTransfer();
    for (const f of input.files) merged.items.add(f);
    for (const f of e.dataTransfer.files) merged.items.add(f);
    input.files = merged.files;
    render();
  });

  form.addEventListener("submit", function (e) {
    const problems = render();
    if (!input.files.length) problems.push("Choose at least one photo.");
    if (problems.length) {
      e.preventDefault();
      if (!input.files.length) {
        const para = document.createElement("p");
        para.textContent = "Choose at least one photo.";
        problemsBox.appendChild(para);
      }
      input.focus();
      return;
    }
    const button = document.getElementById("submit-batch");
    button.disabled = true;
    button.textContent = "Uploading\u2026";
  });
})();
