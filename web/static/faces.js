/* Face boxes over a photo in the item editor: one clickable, numbered outline per face the
   worker found (item.faces: boxes as fractions of the photo's width and height), drawn over
   the picture inside its <img> (which letterboxes it: object-fit: contain). The editor says
   which face is selected; a click on a box calls onPick(index). */
"use strict";

const FaceBoxes = (function () {
  function create(img, onPick) {
    const layer = document.createElement("div");
    layer.className = "face-boxes";
    layer.hidden = true;
    img.parentElement.appendChild(layer);
    let faces = [];

    /* The layer covers exactly the picture inside the <img> element. */
    function place() {
      const nw = img.naturalWidth, nh = img.naturalHeight;
      if (!faces.length || !nw || !nh || !img.clientWidth) {
        layer.hidden = true;
        return;
      }
      const scale = Math.min(img.clientWidth / nw, img.clientHeight / nh);
      const w = nw * scale, h = nh * scale;
      layer.style.left = (img.offsetLeft + (img.clientWidth - w) / 2) + "px";
      layer.style.top = (img.offsetTop + (img.clientHeight - h) / 2) + "px";
      layer.style.width = w + "px";
      layer.style.height = h + "px";
      layer.hidden = false;
    }

    function box(face, index) {
      const b = face.box;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "face-box";
      button.dataset.face = String(index);
      button.setAttribute("aria-label", "Face " + (index + 1));
      button.setAttribute("aria-pressed", "false");
      button.style.left = (b[0] * 100) + "%";
      button.style.top = (b[1] * 100) + "%";
      button.style.width = ((b[2] - b[0]) * 100) + "%";
      button.style.height = ((b[3] - b[1]) * 100) + "%";
      const number = document.createElement("span");
      number.textContent = String(index + 1);
      number.setAttribute("aria-hidden", "true");
      button.appendChild(number);
      button.addEventListener("click", function () { onPick(index); });
      return button;
    }

    /* New faces (the first preview found them): one outline each. */
    function show(newFaces) {
      faces = newFaces || [];
      layer.replaceChildren.apply(layer, faces.map(box));
      place();
    }

    function select(index) {
      layer.querySelectorAll(".face-box").forEach(function (b) {
        b.setAttribute("aria-pressed", String(Number(b.dataset.face) === index));
      });
    }

    img.addEventListener("load", place);
    window.addEventListener("resize", place);
    return { show: show, select: select, place: place };
  }

  /* Face crops (no photo to outline on): one "Face n" button each in ``container``. */
  function buttons(container, onPick) {
    const list = document.createElement("span");
    list.className = "face-buttons";
    container.insertBefore(list, container.children[1] || null);
    function show(faces) {
      list.replaceChildren.apply(list, (faces || []).map(function (face, index) {
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.face = String(index);
        button.textContent = "Face " + (index + 1);
        button.setAttribute("aria-pressed", "false");
        button.addEventListener("click", function () { onPick(index); });
        return button;
      }));
    }
    function select(index) {
      list.querySelectorAll("button").forEach(function (b) {
        b.setAttribute("aria-pressed", String(Number(b.dataset.face) === index));
      });
    }
    return { show: show, select: select, place: function () {} };
  }

  return { create: create, buttons: buttons };
})();
