/* What the item editor's sliders edit, and its undo history.
   The model is the item's edits ("shared": every face without an override) and the per-face
   overrides (face index as text -> edits), as the server stores them; the sliders show the
   selected scope (all faces, or one face). An undo step puts back the whole model and the face
   it was made for; redo goes forward again. Reset per slider puts back the value it has without
   this page's changes (the batch's, or for one face the shared edits); Shift+arrow moves a
   slider ten steps (a plain arrow moves one, as the browser does). */
"use strict";

const EditState = (function () {
  const SCALE = 100;  // slider positions -100..100 are edits -1..1

  /* hooks: scope(face, own) after the selected scope or its sliders changed;
     travelled() after an undo or redo changed the model (ask for its preview). */
  function create(root, item, recipeEdits, hooks) {
    const sliders = Array.from(root.querySelectorAll('input[type="range"][data-attr]'));
    let model = { shared: Object.assign({}, item.edits || {}), faces: Object.assign({}, item.face_edits || {}) };
    let face = null;  // null: all faces
    const past = [], future = [];
    const undoButton = document.getElementById("undo");
    const redoButton = document.getElementById("redo");

    function copy(m) { return JSON.parse(JSON.stringify(m)); }
    let last = copy(model);

    function shownFor(f) {
      return f !== null && String(f) in model.faces ? model.faces[String(f)] : model.shared;
    }
    function fromSliders() {
      const edits = {};
      sliders.forEach(function (s) { if (Number(s.value) !== 0) edits[s.dataset.attr] = Number(s.value) / SCALE; });
      if (face === null) model.shared = edits;
      else if (Object.keys(edits).length) model.faces[String(face)] = edits;
      else delete model.faces[String(face)];  // an empty override is none
      hooks.scope(face, face !== null && String(face) in model.faces);
    }
    function toSliders(edits) {
      sliders.forEach(function (s) {
        s.value = String(Math.round((edits[s.dataset.attr] || 0) * SCALE));
        const out = document.getElementById(s.id + "-out");
        if (out) out.textContent = s.value;
      });
    }
    /* Select a scope and load its sliders (nothing changed: no request). */
    function show(f) {
      face = f;
      toSliders(shownFor(f));
      hooks.scope(face, face !== null && String(face) in model.faces);
    }
    /* The edit request for the selected scope: a face always names itself. */
    function body(cost) {
      if (face === null) return { edits: model.shared, preview: cost };
      return { edits: model.faces[String(face)] || {}, face: face, preview: cost };
    }

    function buttons() {
      undoButton.disabled = past.length === 0;
      redoButton.disabled = future.length === 0;
    }
    function remember() {
      if (JSON.stringify(model) === JSON.stringify(last)) return;
      past.push({ face: face, model: last });
      future.length = 0;
      last = copy(model);
      buttons();
    }
    function travel(from, to) {
      fromSliders();
      remember();  // a move not released yet is a step of its own
      const step = from.pop();
      if (!step) return;
      to.push({ face: step.face, model: copy(model) });
      model = step.model;
      last = copy(model);
      show(step.face);
      buttons();
      hooks.travelled();
    }
    function undo() { travel(past, future); }
    function redo() { travel(future, past); }
    undoButton.addEventListener("click", undo);
    redoButton.addEventListener("click", redo);

    function setSlider(s, value) {
      s.value = String(Math.max(-100, Math.min(100, value)));
      s.dispatchEvent(new Event("input", { bubbles: true }));
      s.dispatchEvent(new Event("change", { bubbles: true }));
    }
    sliders.forEach(function (s) {
      s.addEventListener("change", remember);
      s.addEventListener("keydown", function (e) {
        const dir = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1 }[e.key];
        if (!dir || !e.shiftKey) return;
        e.preventDefault();
        setSlider(s, Number(s.value) + dir * 10);
      });
    });
    root.querySelectorAll("button[data-reset]").forEach(function (button) {
      button.addEventListener("click", function () {
        const s = document.getElementById(button.dataset.reset);
        const base = face === null ? recipeEdits : model.shared;
        setSlider(s, Math.round((base[s.dataset.attr] || 0) * SCALE));
      });
    });
    buttons();

    return {
      sliders: sliders, fromSliders: fromSliders, show: show, body: body, remember: remember,
      undo: undo, redo: redo,
      face: function () { return face; },
      resetAll: function () { toSliders(recipeEdits); fromSliders(); remember(); },
    };
  }

  return { create: create };
})();
