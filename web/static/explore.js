/* Direction explorer: asks the API for a strip of previews along the chosen direction, follows
   it (Portal.follow; strips have no events, so it polls) until the worker has rendered it, shows
   it with its values; a generator direction can then be kept under a name (the directions URL). */
"use strict";

(function () {
  const root = document.getElementById("explorer");
  if (!root) return;
  const form = document.getElementById("explore-form");
  const select = document.getElementById("direction");
  const steps = document.getElementById("steps");
  const statusLine = document.getElementById("strip-status");
  const figure = document.getElementById("strip-figure");
  const img = document.getElementById("strip-img");
  const values = document.getElementById("strip-values");
  const nameForm = document.getElementById("name-form");
  const nameStatus = document.getElementById("name-status");
  let current = 0;  // the newest strip asked for: older answers are ignored

  function say(text) { statusLine.textContent = text; }
  function isGenerator(key) { return /^(sefa|pca)_\d\d$/.test(key); }

  let following = null;

  /* The strip once rendered (null when a newer strip was asked for meanwhile). */
  function rendered(url, ticket) {
    if (following) following.stop();
    return new Promise(function (resolve, reject) {
      following = Portal.follow({
        json: url, events: null, fastMs: 250, slowMs: null,
        busy: function (strip) { return strip.status === "queued" && ticket === current; },
        onData: function (strip) {
          if (ticket !== current) { resolve(null); return; }
          if (strip.status === "done") resolve(strip);
          else if (strip.status === "failed") reject(new Error(strip.error || "the strip failed"));
        },
        // A refusal will not change by asking again; anything else (the network) is retried.
        onError: function (e) { if (e.status >= 400 && e.status < 500) { following.stop(); reject(e); } },
      });
    });
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const ticket = ++current;
    const direction = select.value;
    say("Rendering previews along " + direction + "\u2026");
    nameForm.hidden = true;
    try {
      const strip = await Portal.request("POST", root.dataset.stripsUrl,
                                         { direction: direction, steps: Number(steps.value) });
      const done = await rendered(strip.url, ticket);
      if (!done || ticket !== current) return;
      img.src = done.image_url;
      values.textContent = "Values: " + done.values.map(function (v) {
        return (v > 0 ? "+" : "") + v;
      }).join("  ");
      figure.hidden = false;
      nameForm.hidden = !isGenerator(direction);
      nameForm.dataset.source = direction;
      say("Previews of " + direction + " (" + done.values.length + " frames).");
    } catch (e) {
      say("Could not render the strip: " + e.message);
    }
  });

  nameForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    const name = document.getElementById("direction-name").value.trim();
    try {
      const saved = await Portal.request("POST", root.dataset.directionsUrl,
                                         { name: name, source: nameForm.dataset.source,
                                           model: root.dataset.model });  // the item's model
      nameStatus.textContent = "Saved as \u201c" + saved.name + "\u201d: use " + saved.key +
        " (or " + saved.name + ") in edits.";
    } catch (e) {
      nameStatus.textContent = "Could not save: " + e.message;
    }
  });
})();
