/* New batch: drag and drop onto the file chooser, type and size checks before upload (the server
   checks again), slider read-outs and the cost read-outs. The page sends the form itself, so the
   chosen files stay chosen whatever happens: each file the browser or the server refuses is
   listed with its reason, and the batch can then be made from the good ones (only those are
   sent, with partial=on and the reasons of those left out here; the server leaves out any it
   refuses too, and the batch's message names every file left out). */
"use strict";

(function () {
  const form = document.getElementById("new-batch");
  if (!form) return;
  const input = document.getElementById("files");
  const zone = document.getElementById("dropzone");
  const list = document.getElementById("file-list");
  const problemsBox = document.getElementById("files-problems");
  const formErrors = document.getElementById("form-errors");
  const offer = document.getElementById("partial-offer");
  const button = document.getElementById("submit-batch");
  const maxFileBytes = Number(form.dataset.maxFileMb) * 1024 * 1024;
  const maxUploadBytes = Number(form.dataset.maxUploadMb) * 1024 * 1024;
  const maxFiles = Number(form.dataset.maxFiles);
  const costs = JSON.parse(form.dataset.costs);
  const TYPES = ["image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff", "image/gif",
                 "image/heic", "image/heif", "image/avif"];
  const EXTENSIONS = /\.(jpe?g|png|webp|bmp|tiff?|gif|hei[cf]|avif)$/i;
  let serverRefused = new Map();  // File -> the server's reason, from the last attempt

  Portal.bindSliderOutputs(form);
  Portal.bindCost(form, "preview", costs);
  Portal.bindCost(form, "final", costs);

  function mb(bytes) { return (bytes / 1024 / 1024).toFixed(1) + " MB"; }

  /* Why the browser already knows a file cannot be used, or null. */
  function fileProblem(f) {
    // Browsers leave the type empty for formats they do not know (HEIC on some systems).
    const unknownType = !f.type || f.type === "application/octet-stream";
    if (!(TYPES.includes(f.type) || (unknownType && EXTENSIONS.test(f.name)))) {
      return f.name + ": not a photo (" + (f.type || "unknown type") + "). Use JPEG, PNG, WebP, BMP, TIFF or GIF.";
    }
    if (f.size === 0) return f.name + ": the file is empty.";
    if (f.size > maxFileBytes) return f.name + ": " + mb(f.size) + " is more than the " + mb(maxFileBytes) + " allowed per photo.";
    return null;
  }

  function reasonFor(f) { return fileProblem(f) || serverRefused.get(f) || null; }
  function goodFiles() { return Array.from(input.files).filter(function (f) { return !reasonFor(f); }); }

  /* Problems with the whole choice (not one file's). */
  function choiceProblems(files) {
    const problems = [];
    const total = files.reduce(function (n, f) { return n + f.size; }, 0);
    if (files.length > maxFiles) problems.push(files.length + " photos chosen; a batch takes at most " + maxFiles + ".");
    if (total > maxUploadBytes) problems.push("Together the photos are " + mb(total) + "; one batch may upload at most " + mb(maxUploadBytes) + ". Split them into several batches.");
    return problems;
  }

  function say(box, lines) {
    box.replaceChildren.apply(box, lines.map(function (text) {
      const p = document.createElement("p");
      p.textContent = text;  // textContent: names are never HTML
      return p;
    }));
  }

  /* The chosen files, each with its state; the offer when some (not all) are refused. */
  function render() {
    const files = Array.from(input.files);
    list.replaceChildren.apply(list, files.map(function (f) {
      const li = document.createElement("li");
      const reason = reasonFor(f);
      li.className = reason ? "refused" : "accepted";
      li.dataset.state = reason ? "refused" : "ok";
      li.textContent = f.name + " (" + mb(f.size) + ")";
      if (reason) {
        const why = document.createElement("span");
        why.className = "reason";
        why.textContent = " \u2014 " + reason.replace(f.name + ": ", "");
        li.appendChild(why);
      }
      return li;
    }));
    const good = goodFiles();
    const refused = files.length - good.length;
    const problems = choiceProblems(good);
    if (files.length && !good.length) {
      problems.unshift(files.length === 1 ? "The chosen file cannot be used (the reason is above)."
        : "None of the " + files.length + " chosen files can be used (the reasons are above).");
    }
    say(problemsBox, problems);
    offer.hidden = !(refused && good.length && !problems.length);
    if (!offer.hidden) {
      document.getElementById("partial-text").textContent = refused + " of " + files.length +
        " photos cannot be used (reasons above). The other " + good.length + " can make the batch.";
      document.getElementById("partial-submit").textContent = "Create the batch from the " + good.length +
        " good photo" + (good.length === 1 ? "" : "s");
    }
    input.setAttribute("aria-invalid", refused || problems.length ? "true" : "false");
    return { good: good, refused: refused, problems: problems };
  }

  function choose(files) {
    const merged = new DataTransfer();
    files.forEach(function (f) { merged.items.add(f); });
    input.files = merged.files;
    render();
  }

  input.addEventListener("change", function () { serverRefused = new Map(); formErrors.hidden = true; render(); });
  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function () { zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (e) {
    e.preventDefault();
    if (!e.dataTransfer || !e.dataTransfer.files.length) return;
    choose(Array.from(input.files).concat(Array.from(e.dataTransfer.files)));
  });

  /* Send the form with ``files``; the server's refusals are kept per file. */
  async function upload(files, partial) {
    const data = new FormData(form);
    data.delete("files");
    files.forEach(function (f) { data.append("files", f, f.name); });
    if (partial) {
      data.set("partial", "on");
      // The files left out here, named with their reasons: the batch's message lists them with
      // any the server leaves out, so it names every file not in the batch.
      Array.from(input.files).forEach(function (f) {
        const reason = files.indexOf(f) === -1 ? reasonFor(f) : null;
        if (reason) data.append("left_out", reason);
      });
    }
    button.disabled = true;
    button.textContent = "Uploading\u2026";
    formErrors.hidden = true;
    try {
      const made = await Portal.request("POST", form.action || window.location.href, data);
      window.location.href = made.url;
      return;
    } catch (err) {
      const d = err.details || {};
      (d.refused || []).forEach(function (r) { if (files[r.index]) serverRefused.set(files[r.index], r.reason); });
      const general = (d.problems || []).slice();
      if (!d.refused && !d.problems) general.push(err.message);
      formErrors.querySelector("ul").replaceChildren.apply(formErrors.querySelector("ul"), general.map(function (t) {
        const li = document.createElement("li");
        li.textContent = t;
        return li;
      }));
      formErrors.hidden = !general.length;
      render();
      (general.length ? formErrors : list).scrollIntoView({ block: "center" });
    }
    button.disabled = false;
    button.textContent = "Upload and start";
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    const state = render();
    if (!input.files.length) {
      say(problemsBox, ["Choose at least one photo."]);
      input.focus();
      return;
    }
    if (state.refused || state.problems.length) {
      input.focus();
      return;  // the offer (or the problems) say what to do
    }
    upload(Array.from(input.files), false);
  });

  document.getElementById("partial-submit").addEventListener("click", function () {
    upload(goodFiles(), true);
  });
})();
