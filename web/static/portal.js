/* What the portal's pages share besides the API client (api.js): formatting, the item view
   (labels and image URLs from the page's config), the quality line, the progress in words,
   slider read-outs and the cost controls. No build step. */
"use strict";

Object.assign(window.Portal, (function () {
  const config = window.Portal.config;
  const url = window.Portal.url;

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

  return { view, statusLabel, qualityText, progressText, formatSeconds, formatMacs,
           bindSliderOutputs, bindCost };
})());
