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

  return { request, csrfToken, formatSeconds, formatMacs, bindSliderOutputs, bindCost, debounce };
})();
