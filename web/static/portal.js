/* Shared helpers of the portal pages: CSRF-carrying fetch, formatting, slider read-outs and the
   cost controls (MACs and a rough time for the chosen channels x resolution). No build step. */
"use strict";

window.Portal = (function () {
  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  async function request(method, url, body) {
    const init = {
      method: method,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": csrfToken() },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      const message = data && data.error ? data.error.message : response.statusText;
      const error = new Error(message || ("HTTP " + response.status));
      error.status = response.status;
      throw error;
    }
    return data;
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
        const fig = (costs.consistency || {})[costKey(v.channels, v.resolution)];
        const agree = info.querySelector(".consistency");
        if (agree) {
          agree.textContent = fig && fig.psnr !== null ? "Agrees with the final: " +
            fig.psnr.toFixed(1) + " dB PSNR" + (fig.untrained ?
              " (untrained: the preview may not match the final)" : "") + "." : "";
        }
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

  const STATUS_LABELS = { queued: "Queued", previewing: "Rendering preview",
    preview_ready: "Preview ready", finalizing: "Rendering final", done: "Done", failed: "Failed",
    canceled: "Canceled", running: "Running", empty: "Empty" };
  const IMAGE_KINDS = ["original", "projected", "preview", "final"];

  /* The quality line of an item (same words as web/portal/present.py's quality_text). */
  function qualityText(item) {
    const parts = [];
    const scores = Object.entries(item.realism || {}).filter(function ([, r]) { return r; })
      .map(function ([kind, r]) { return kind + " " + Number(r.score).toFixed(2); });
    if (scores.length) parts.push("Realism " + scores.join(", "));
    const p = item.projection || {};
    if (p.method) {
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

  /* An item of REST API v1 plus what the pages show (as web/portal/present.py's view_item). */
  function view(item) {
    const urls = {};
    IMAGE_KINDS.forEach(function (kind) { urls[kind] = item[kind + "_url"] || null; });
    return Object.assign({}, item, {
      status_label: STATUS_LABELS[item.status] || item.status,
      error_text: item.error ? item.error.message : null,
      quality_text: qualityText(item),
      urls: urls,
    });
  }

  function statusLabel(status) { return STATUS_LABELS[status] || status; }

  return { request, view, statusLabel, qualityText, csrfToken, formatSeconds, formatMacs, bindSliderOutputs, bindCost, debounce };
})();
