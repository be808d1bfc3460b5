/* The item editor's picture: zoom and pan that keep the picture (and the face) in view, a
   draggable before/after split, and "before" in place of the edit.
   The viewport holds a canvas (both pictures, letterboxed: object-fit contain, and the face
   outlines); zoom and pan are one transform on the canvas, clamped so the picture covers the
   viewport (or is centred in it when smaller). Zooming with the buttons or keys centres the face
   (the selected one, else the largest, else the middle); the wheel zooms about the pointer.
   The split clips the edit to the right of a line the user drags (or moves with the arrow keys
   on its handle); the "before" picture shows on its left. */
"use strict";

const StageView = (function () {
  const LEVELS = [1, 1.5, 2, 3, 4, 6, 8];

  function create(opts) {
    const viewport = opts.viewport, canvas = opts.canvas, after = opts.after, before = opts.before;
    const handle = opts.handle;
    let s = 1, tx = 0, ty = 0;
    let split = false, showBefore = false, splitAt = 0.5;

    /* The displayed picture inside the canvas, in the canvas's own (unscaled) pixels. */
    function picture() {
      const img = after.naturalWidth ? after : before;
      const W = canvas.clientWidth, H = canvas.clientHeight;
      if (!img || !img.naturalWidth) return { x: 0, y: 0, w: W, h: H };
      const k = Math.min(W / img.naturalWidth, H / img.naturalHeight);
      const w = img.naturalWidth * k, h = img.naturalHeight * k;
      return { x: (W - w) / 2, y: (H - h) / 2, w: w, h: h };
    }

    function clampAxis(t, start, length, view) {
      const scaled = length * s;
      if (scaled <= view) return (view - scaled) / 2 - start * s;  // smaller: centred
      return Math.min(-start * s, Math.max(view - (start + length) * s, t));  // no empty edge
    }

    function apply() {
      const p = picture();
      tx = clampAxis(tx, p.x, p.w, viewport.clientWidth);
      ty = clampAxis(ty, p.y, p.h, viewport.clientHeight);
      canvas.style.transform = "translate(" + tx + "px, " + ty + "px) scale(" + s + ")";
      const level = Math.round(s * 100) + "%";
      if (opts.onZoom) opts.onZoom(s, level);
      clip();
    }

    /* The split line is in the viewport; the clip is in the canvas's pixels. */
    function clip() {
      after.style.visibility = showBefore ? "hidden" : "";
      // Until the first preview, the photo itself stands in for it.
      before.hidden = !(split || showBefore || !after.getAttribute("src"));
      handle.hidden = !split;
      if (!split) { after.style.clipPath = ""; return; }
      const x = (splitAt * viewport.clientWidth - tx) / s;
      after.style.clipPath = "inset(0 0 0 " + Math.max(0, x) + "px)";
      handle.style.left = (splitAt * 100) + "%";
      const pct = Math.round(splitAt * 100);
      handle.setAttribute("aria-valuenow", String(pct));
      handle.setAttribute("aria-valuetext", pct + "% before");
    }

    /* Zoom to ``level`` keeping the canvas point under viewport point (vx, vy) where it is, or
       (no point given) with the face in the middle of the viewport. */
    function zoomTo(level, vx, vy) {
      level = Math.max(LEVELS[0], Math.min(LEVELS[LEVELS.length - 1], level));
      if (vx === undefined) {
        const p = picture();
        const f = opts.focus ? opts.focus() : null;
        const cx = p.x + (f ? f.x : 0.5) * p.w, cy = p.y + (f ? f.y : 0.5) * p.h;
        s = level;
        tx = viewport.clientWidth / 2 - cx * s;
        ty = viewport.clientHeight / 2 - cy * s;
      } else {
        const cx = (vx - tx) / s, cy = (vy - ty) / s;
        s = level;
        tx = vx - cx * s;
        ty = vy - cy * s;
      }
      apply();
    }

    function step(direction) {
      const i = LEVELS.findIndex(function (l) { return l >= s - 1e-6; });
      const at = i === -1 ? LEVELS.length - 1 : i;
      const next = direction > 0 ? LEVELS[Math.min(LEVELS.length - 1, LEVELS[at] > s + 1e-6 ? at : at + 1)]
        : LEVELS[Math.max(0, at - 1)];
      zoomTo(next);
    }

    viewport.addEventListener("wheel", function (e) {
      e.preventDefault();
      const r = viewport.getBoundingClientRect();
      zoomTo(s * Math.pow(1.0015, -e.deltaY), e.clientX - r.left, e.clientY - r.top);
    }, { passive: false });

    /* Dragging: the split handle moves the line; anywhere else pans (when zoomed in). */
    let drag = null;
    viewport.addEventListener("pointerdown", function (e) {
      if (e.button !== 0) return;
      const onHandle = e.target === handle || handle.contains(e.target);
      if (!onHandle && (s <= 1 || e.target.closest(".face-box"))) return;
      drag = { handle: onHandle, x: e.clientX, y: e.clientY, tx: tx, ty: ty, id: e.pointerId };
      viewport.setPointerCapture(e.pointerId);
      viewport.classList.add("dragging");
      e.preventDefault();
    });
    viewport.addEventListener("pointermove", function (e) {
      if (!drag || e.pointerId !== drag.id) return;
      if (drag.handle) {
        const r = viewport.getBoundingClientRect();
        setSplitAt((e.clientX - r.left) / r.width);
      } else {
        tx = drag.tx + e.clientX - drag.x;
        ty = drag.ty + e.clientY - drag.y;
        apply();
      }
    });
    function endDrag(e) {
      if (!drag || e.pointerId !== drag.id) return;
      drag = null;
      viewport.classList.remove("dragging");
    }
    viewport.addEventListener("pointerup", endDrag);
    viewport.addEventListener("pointercancel", endDrag);

    function setSplitAt(fraction) {
      splitAt = Math.max(0, Math.min(1, fraction));
      clip();
    }
    handle.addEventListener("keydown", function (e) {
      const moves = { ArrowLeft: -0.02, ArrowRight: 0.02, ArrowDown: -0.02, ArrowUp: 0.02 };
      if (e.key in moves) setSplitAt(splitAt + moves[e.key] * (e.shiftKey ? 5 : 1));
      else if (e.key === "Home") setSplitAt(0);
      else if (e.key === "End") setSplitAt(1);
      else return;
      e.preventDefault();
      e.stopPropagation();  // not the filmstrip's arrows
    });

    [after, before].forEach(function (img) { img.addEventListener("load", apply); });
    window.addEventListener("resize", apply);
    apply();

    return {
      zoomIn: function () { step(1); },
      zoomOut: function () { step(-1); },
      fit: function () { zoomTo(1); },
      scale: function () { return s; },
      setSplit: function (on) { split = on; if (on) showBefore = false; clip(); return split; },
      split: function () { return split; },
      setSplitAt: setSplitAt,
      setBefore: function (on) { showBefore = on; clip(); return showBefore; },
      before: function () { return showBefore; },
      place: apply,
    };
  }

  /* The workspace's view buttons and keys: Split, Before, zoom in/out/fit; s, b, + - 0, and
     the arrows (outside sliders and the panel) for the filmstrip's previous/next photo.
     ``showing()``: what the edit layer shows ("preview" or "final"). */
  function bindTools(view, root, showing) {
    const splitButton = document.getElementById("split");
    const beforeButton = document.getElementById("before-after");
    function refresh() {
      splitButton.setAttribute("aria-pressed", String(view.split()));
      beforeButton.setAttribute("aria-pressed", String(view.before()));
      document.getElementById("before-caption").hidden = !(view.split() || view.before());
      root.dataset.split = view.split() ? "on" : "off";
      root.dataset.showing = view.before() ? "before" : showing();
    }
    function toggleSplit() { view.setSplit(!view.split()); refresh(); }
    function toggleBefore() { view.setBefore(!view.before()); if (view.before()) view.setSplit(false); refresh(); }
    function go(id) { const link = document.getElementById(id); if (link) window.location.href = link.href; }
    splitButton.addEventListener("click", toggleSplit);
    beforeButton.addEventListener("click", toggleBefore);
    document.getElementById("zoom-in").addEventListener("click", view.zoomIn);
    document.getElementById("zoom-out").addEventListener("click", view.zoomOut);
    document.getElementById("zoom-fit").addEventListener("click", view.fit);
    const actions = { arrowleft: function () { go("previous-item"); }, arrowright: function () { go("next-item"); },
      s: toggleSplit, b: toggleBefore, "+": view.zoomIn, "=": view.zoomIn, "-": view.zoomOut, "0": view.fit };
    document.addEventListener("keydown", function (e) {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const t = e.target, key = e.key.toLowerCase();
      if (t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement ||
          t.getAttribute("role") === "slider") return;
      if (key.startsWith("arrow") && t.closest(".panel")) return;  // the panel's own
      if (actions[key]) { e.preventDefault(); actions[key](); }
    });
    return { refresh: refresh };
  }

  return { create: create, bindTools: bindTools };
})();
