/* The portal's one client of REST API v1 and what every page shares. No build step.
   - config: the server's status labels, image kinds and URLs, read from the page
     (#portal-config, rendered from web/portal/present.py's page_config): no script keeps its
     own copy, none hard-codes /api/v1.
   - request(): JSON or FormData with the session's CSRF header; a refusal is an ApiError with
     the API's status, code, field and message.
   - follow(): one loop for every page that watches a batch, an item or a strip: load the JSON,
     load it again when the batch's event stream (server-sent events) says something happened,
     and poll only while the stream is down (fast while busy, slowly otherwise, never while the
     tab is hidden).
   - formatting, slider read-outs and the cost controls. */
"use strict";

window.Portal = (function () {
  const configNode = document.getElementById("portal-config");
  const config = configNode ? JSON.parse(configNode.textContent) : { status_labels: {}, image_kinds: [], urls: {} };

  /* A URL the page was given: url("batch", id) fills in "{id}". */
  function url(name, id) {
    const template = config.urls[name];
    if (!template) throw new Error("the page has no URL for " + name);
    return id === undefined ? template : template.replace("{id}", encodeURIComponent(id));
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  /* The API's refusal: {"error": {"code", "message", "field", ...}} and the HTTP status. */
  class ApiError extends Error {
    constructor(status, error) {
      super((error && error.message) || ("HTTP " + status));
      this.status = status;
      this.code = error ? error.code : null;
      this.field = error ? error.field : null;
      this.details = error || {};
    }
  }

  async function request(method, target, body) {
    const init = {
      method: method,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrfToken() },
    };
    if (body instanceof FormData) {
      init.body = body;  // the browser writes the multipart boundary
    } else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(target, init);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) throw new ApiError(response.status, data && data.error ? data.error : { message: response.statusText });
    return data;
  }

  const EVENT_KINDS = ["snapshot", "item.preview_ready", "item.done", "item.failed", "batch.completed"];

  /* Follow a resource. options:
       json      the URL of its JSON (GET)
       events    the batch's event stream URL, or null (then polling only)
       onData    called with each fresh JSON
       busy      (data) -> whether something is still changing (polls fast without a stream)
       onEvent   (kind, payload) -> false to skip the reload this event would cause
       initial   the JSON the page was rendered with (no first request)
       fastMs, slowMs   polling without a stream, busy and idle (slowMs null: stop when idle)
       safetyMs  with a stream, a slow poll while busy, in case an event was missed
       onStream  (up) -> called when the event stream opens or drops
     Returns {refresh(ms), stop(), streaming()}. */
  function follow(options) {
    const fastMs = options.fastMs || 700;
    const slowMs = options.slowMs === undefined ? 10000 : options.slowMs;
    const safetyMs = options.safetyMs || 5000;
    let timer = null, due = Infinity, inFlight = false, again = false, stopped = false;
    let streaming = false, source = null, last = options.initial || null;

    function schedule(ms) {
      if (stopped) return;
      const at = performance.now() + ms;
      if (timer !== null && due <= at) return;  // an earlier load is already due
      clearTimeout(timer);
      due = at;
      timer = setTimeout(load, ms);
    }

    function next(failed) {
      if (failed) { schedule(5000); return; }
      const busy = last ? options.busy(last) : true;
      if (streaming) { if (busy) schedule(safetyMs); return; }
      if (document.hidden) return;  // visibilitychange loads again
      if (busy) schedule(fastMs); else if (slowMs !== null) schedule(slowMs);
    }

    async function load() {
      timer = null;
      due = Infinity;
      if (inFlight) { again = true; return; }
      inFlight = true;
      let failed = false;
      try {
        const data = await request("GET", options.json);
        if (stopped) return;
        last = data;
        options.onData(data);
      } catch (e) {
        failed = true;
        if (options.onError) options.onError(e);
      } finally {
        inFlight = false;
      }
      if (again) { again = false; schedule(0); return; }
      next(failed);
    }

    function listen() {
      if (!options.events || !window.EventSource) return;
      source = new EventSource(options.events);
      let opened = false;
      source.onopen = function () {
        streaming = true;
        if (options.onStream) options.onStream(true);
        if (opened) schedule(0);  // back after a drop: catch up on what was missed
        opened = true;
      };
      source.onerror = function () {
        // EventSource reconnects by itself (the server ends streams after a while); until
        // then, and for good once it gives up (CLOSED), the poll keeps the page current.
        streaming = false;
        if (options.onStream) options.onStream(false);
        if (timer === null && !inFlight) next(false);
        if (source.readyState === EventSource.CLOSED) setTimeout(function () { if (!stopped) listen(); }, 10000);
      };
      EVENT_KINDS.forEach(function (kind) {
        source.addEventListener(kind, function (e) {
          let payload = null;
          try { payload = JSON.parse(e.data); } catch (err) { return; }
          if (options.onEvent && options.onEvent(kind, payload) === false) return;
          schedule(50);  // a burst of events is one load
        });
      });
    }

    function onVisible() { if (!document.hidden && !streaming && timer === null && !inFlight) schedule(0); }
    document.addEventListener("visibilitychange", onVisible);
    listen();
    if (last) next(false); else schedule(0);
    return {
      refresh: function (ms) { schedule(ms || 0); },
      streaming: function () { return streaming; },
      stop: function () {
        stopped = true;
        clearTimeout(timer);
        if (source) source.close();
        document.removeEventListener("visibilitychange", onVisible);
      },
    };
  }

  function formatSeconds(s) {
    if (s === null || s === undefined || isNaN(s)) return "";
    if (s < 0.001) return "< 1 ms";
    return s < 1 ? Math.round(s * 1000) + " ms" : s.toFixed(2) + " s";
  }

  function formatMacs(macs) {
    const units = [["T", 1e12], ["G", 1e9], ["M", 1e6], ["k", 1e3]];
    for (const [unit, scale] of units) {
      if (macs >= scale) return (macs / scale).toPrecision(3).replace(/\.?0+$/, "") + " " + unit + "MACs";
    }
    return Math.round(macs) + " MACs";
  }

  function costKey(channels, resolution) {
    // Same key as the server's cost_key: "%g@%d".
    return String(Number(channels)) + "@" + String(resolution);
  }

  /* Keep every edit slider's <output> in step with it. */
  function bindSliderOutputs(root) {
    root.querySelectorAll('input[type="range"][data-attr]').forEach(function (input) {
      const out = document.getElementById(input.id + "-out");
      input.addEventListener("input", function () { if (out) out.textContent = input.value; });
    });
  }

  /* The cost block of one stage: read-outs, MACs and the rough time. Returns a getter for
     {channels, resolution}. */
  function bindCost(root, stage, costs, onChange) {
    const ch = root.querySelector("#" + stage + "_channels");
    const res = root.querySelector("#" + stage + "_res_log2");
    const info = root.querySelector("#" + stage + "-cost-info");
    function value() {
      return { channels: Number(ch.value), resolution: Math.pow(2, Number(res.value)) };
    }
    function show() {
      const v = value();
      document.getElementById(ch.id + "-out").textContent = Math.round(v.channels * 100) + "%";
      document.getElementById(res.id + "-out").textContent = v.resolution + " px";
      const macs = costs.macs[costKey(v.channels, v.resolution)];
      if (info && macs) {
        info.querySelector(".macs").textContent = formatMacs(macs);
        info.querySelector(".eta").textContent = formatSeconds(macs / costs.macs_per_second);
      }
    }
    [ch, res].forEach(function (el) {
      el.addEventListener("input", show);
      if (onChange) el.addEventListener("change", function () { onChange(value()); });
    });
    show();
    return value;
  }

  function debounce(fn, ms) {
    let timer = null;
    return function () {
      const args = arguments;
      clearTimeout(timer);
      timer = setTimeout(function () { fn.apply(null, args); }, ms);
    };
  }

  function statusLabel(status) { return config.status_labels[status] || status; }

  /* The quality line of an item (same words as web/portal/present.py's quality_text). */
  function qualityText(item) {
    const parts = [];
    const scores = Object.entries(item.realism || {}).filter(function ([, r]) { return r; })
      .map(function ([kind, r]) { return kind + " " + Number(r.score).toFixed(2); });
    if (scores.length) parts.push("Realism " + scores.join(", "));
    const p = item.projection || {};
    if (p.method === "synthesis") {
      parts.push("Generated from seed " + p.seed);
    } else if (p.method) {
      parts.push("Projected by " + p.method +
                 (p.error !== null && p.error !== undefined ? ", error " + Number(p.error).toFixed(4) : ""));
    }
    const c = item.consistency || {};
    if (c.psnr !== null && c.psnr !== undefined) {
      parts.push("Final vs preview PSNR " + Number(c.psnr).toFixed(1) + " dB" +
                 (c.lpips !== null && c.lpips !== undefined ? ", LPIPS " + Number(c.lpips).toFixed(3) : ""));
    }
    return parts.join(" \u00b7 ");
  }

  /* A batch's progress in words (same words as present.py's progress_text). */
  function progressText(counts) {
    const total = Object.values(counts).reduce(function (a, b) { return a + b; }, 0);
    if (!total) return "No photos";
    const previews = config.preview_shown.reduce(function (n, k) { return n + (counts[k] || 0); }, 0);
    const parts = ["Previews " + previews + "/" + total + " ready", "finals " + (counts.done || 0) + "/" + total];
    ["failed", "canceled"].forEach(function (k) { if (counts[k]) parts.push(counts[k] + " " + k); });
    return parts.join(" \u00b7 ");
  }

  /* An item of REST API v1 plus what the pages show (as web/portal/present.py's view_item). */
  function view(item) {
    const urls = {};
    config.image_kinds.forEach(function (kind) { urls[kind] = item[kind + "_url"] || null; });
    return Object.assign({}, item, {
      status_label: statusLabel(item.status),
      error_text: item.error ? item.error.message : null,
      quality_text: qualityText(item),
      urls: urls,
      editor_url: url("item_page", item.id),
    });
  }

  return { config, url, request, ApiError, follow, view, statusLabel, qualityText, progressText,
           csrfToken, formatSeconds, formatMacs, bindSliderOutputs, bindCost, debounce };
})();
