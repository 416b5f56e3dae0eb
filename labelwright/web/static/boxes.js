// Bounding boxes over an image field (the `boxes` question type, labelwright/questions/boxes.py).
//
// Each `[data-boxes]` block of a labelling form gets an SVG layer over its image field's <img>; the SVG's
// viewBox is the image's natural size, so what is drawn is in image pixels whatever size it is shown at.
// Drag on the image to draw a box with the chosen label; click a box to select it, drag it to move it,
// drag its corners to resize it. With the image focused: arrows nudge the selected box by a pixel
// (Shift: resize it), Delete or Backspace removes it, Escape unselects, number keys pick the label (and
// relabel the selected box). The hidden textarea `name=<question>` holds the JSON the server validates.

const SVG = "http://www.w3.org/2000/svg";
const MIN = 2; // a drag shorter than this (image pixels) is a click, not a box
const HANDLES = ["nw", "ne", "sw", "se"];

function el(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function round2(v) {
  return Math.round(v * 100) / 100;
}

function findImage(root) {
  const selector = `section[data-field="${CSS.escape(root.dataset.field)}"] img.item-image`;
  for (let scope = root.parentElement; scope; scope = scope.parentElement) {
    const img = scope.querySelector(selector);
    if (img) return img;
  }
  return null;
}

function parse(text) {
  try {
    const value = JSON.parse(text || "[]");
    return Array.isArray(value) ? value.filter((b) => b && typeof b === "object") : [];
  } catch {
    return [];
  }
}

class BoxEditor {
  constructor(root, img) {
    this.root = root;
    this.img = img;
    this.input = root.querySelector("textarea.boxes-json");
    this.list = root.querySelector(".boxes-list");
    this.radios = [...root.querySelectorAll("input[type=radio]")];
    for (const r of this.radios) r.closest("label").style.setProperty("--box-colour", r.dataset.colour);
    this.boxes = parse(this.input.value);
    this.selected = null;
    this.drag = null;
    this.input.hidden = true;
    const stage = document.createElement("div");
    stage.className = "boxes-stage";
    img.parentElement.insertBefore(stage, img);
    stage.appendChild(img);
    this.W = img.naturalWidth;
    this.H = img.naturalHeight;
    this.svg = el("svg", { class: "boxes-layer", viewBox: `0 0 ${this.W} ${this.H}`, preserveAspectRatio: "none",
      tabindex: 0, role: "application", "aria-label": `Boxes on ${img.alt}: drag to draw, arrows nudge` });
    layers.set(this.svg, this);
    stage.appendChild(this.svg);
    this.svg.addEventListener("pointerdown", (e) => this.down(e));
    this.svg.addEventListener("pointermove", (e) => this.move(e));
    this.svg.addEventListener("pointerup", (e) => this.up(e));
    this.svg.addEventListener("pointercancel", () => { this.drag = null; this.render(); });
    for (const r of this.radios) r.addEventListener("change", () => this.relabel(r.value));
    this.render();
  }

  get label() {
    const r = this.radios.find((x) => x.checked) || this.radios[0];
    return r.value;
  }

  colour(label) {
    const r = this.radios.find((x) => x.value === label);
    return r ? r.dataset.colour : "#000";
  }

  point(e) {
    const rect = this.svg.getBoundingClientRect();
    const x = ((e.clientX - rect.left) * this.W) / rect.width;
    const y = ((e.clientY - rect.top) * this.H) / rect.height;
    return { x: Math.min(Math.max(x, 0), this.W), y: Math.min(Math.max(y, 0), this.H) };
  }

  clamp(b) {
    b.w = Math.min(Math.max(b.w, 1), this.W);
    b.h = Math.min(Math.max(b.h, 1), this.H);
    b.x = Math.min(Math.max(b.x, 0), this.W - b.w);
    b.y = Math.min(Math.max(b.y, 0), this.H - b.h);
    for (const k of ["x", "y", "w", "h"]) b[k] = round2(b[k]);
    return b;
  }

  down(e) {
    if (e.button !== 0) return;
    e.preventDefault();
    this.svg.focus();
    this.svg.setPointerCapture(e.pointerId);
    const p = this.point(e);
    const t = e.target;
    if (t.dataset.handle !== undefined && this.selected !== null) {
      this.drag = { mode: "resize", handle: t.dataset.handle, start: p, orig: { ...this.boxes[this.selected] } };
    } else if (t.dataset.i !== undefined) {
      this.selected = Number(t.dataset.i);
      this.drag = { mode: "move", start: p, orig: { ...this.boxes[this.selected] } };
    } else {
      this.selected = null;
      this.drag = { mode: "draw", start: p, box: { x: p.x, y: p.y, w: 0, h: 0, label: this.label } };
    }
    this.render();
  }

  move(e) {
    const d = this.drag;
    if (!d) return;
    const p = this.point(e);
    const dx = p.x - d.start.x;
    const dy = p.y - d.start.y;
    if (d.mode === "draw") {
      d.box = { x: Math.min(p.x, d.start.x), y: Math.min(p.y, d.start.y), w: Math.abs(dx), h: Math.abs(dy),
        label: d.box.label };
    } else if (d.mode === "move") {
      this.boxes[this.selected] = this.clamp({ ...d.orig, x: d.orig.x + dx, y: d.orig.y + dy });
    } else {
      const o = d.orig;
      let [x0, y0, x1, y1] = [o.x, o.y, o.x + o.w, o.y + o.h];
      if (d.handle.includes("w")) x0 += dx; else x1 += dx;
      if (d.handle.includes("n")) y0 += dy; else y1 += dy;
      // the dragged corner stops at the image's edge (a handle grabbed off its centre can reach past it):
      // clamp() would otherwise keep the size and shift the corner that should stay
      [x0, x1] = [x0, x1].map((v) => Math.min(Math.max(v, 0), this.W));
      [y0, y1] = [y0, y1].map((v) => Math.min(Math.max(v, 0), this.H));
      this.boxes[this.selected] = this.clamp({ x: Math.min(x0, x1), y: Math.min(y0, y1), w: Math.abs(x1 - x0),
        h: Math.abs(y1 - y0), label: o.label });
    }
    this.render();
  }

  up() {
    const d = this.drag;
    this.drag = null;
    if (d && d.mode === "draw" && d.box.w >= MIN && d.box.h >= MIN) {
      this.boxes.push(this.clamp(d.box));
      this.selected = this.boxes.length - 1;
    }
    this.render();
    this.save();
  }

  relabel(label) {
    if (this.selected === null) return;
    this.boxes[this.selected].label = label;
    this.render();
    this.save();
  }

  key(e) {
    const k = e.key;
    if (/^[1-9]$/.test(k)) {
      const r = this.radios.find((x) => x.dataset.boxKey === k);
      if (!r) return false;
      r.checked = true;
      this.relabel(r.value);
      return true;
    }
    if (k === "Escape") {
      if (this.selected === null) return false;
      this.selected = null;
      this.render();
      return true;
    }
    if (this.selected === null) return false;
    const b = this.boxes[this.selected];
    if (k === "Delete" || k === "Backspace") {
      this.boxes.splice(this.selected, 1);
      this.selected = null;
    } else if (k.startsWith("Arrow")) {
      const step = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[k];
      if (!step) return false;
      if (e.shiftKey) {
        b.w += step[0];
        b.h += step[1];
      } else {
        b.x += step[0];
        b.y += step[1];
      }
      this.clamp(b);
    } else {
      return false;
    }
    this.render();
    this.save();
    return true;
  }

  save() {
    const value = this.boxes.map((b) => ({ x: b.x, y: b.y, w: b.w, h: b.h, label: b.label }));
    this.input.value = JSON.stringify(value);
    this.input.dispatchEvent(new Event("input", { bubbles: true }));
  }

  render() {
    this.svg.replaceChildren();
    const scale = this.W / Math.max(this.svg.getBoundingClientRect().width, 1);
    const shown = this.drag && this.drag.mode === "draw" ? [...this.boxes, this.drag.box] : this.boxes;
    shown.forEach((b, i) => {
      const rect = el("rect", { x: b.x, y: b.y, width: b.w, height: b.h, class: "box",
        stroke: this.colour(b.label), "vector-effect": "non-scaling-stroke" });
      if (i < this.boxes.length) rect.dataset.i = i;
      if (i === this.selected) rect.classList.add("is-selected");
      this.svg.appendChild(rect);
    });
    if (this.selected !== null && this.boxes[this.selected]) {
      const b = this.boxes[this.selected];
      const s = 8 * scale;
      for (const h of HANDLES) {
        const x = h.includes("w") ? b.x : b.x + b.w;
        const y = h.includes("n") ? b.y : b.y + b.h;
        const handle = el("rect", { x: x - s / 2, y: y - s / 2, width: s, height: s, class: `box-handle h-${h}` });
        handle.dataset.handle = h;
        this.svg.appendChild(handle);
      }
    }
    this.list.replaceChildren(...this.boxes.map((b, i) => {
      const li = document.createElement("li");
      li.textContent = `${b.label}: ${b.x}, ${b.y}, ${b.w}×${b.h}`;
      if (i === this.selected) li.className = "is-selected";
      return li;
    }));
  }
}

const editors = new WeakMap(); // [data-boxes] block -> its editor (null while its image loads)
const layers = new WeakMap(); // SVG layer -> its editor

function setup(root) {
  if (editors.has(root)) return;
  const img = findImage(root);
  if (!img) return; // no image shown (a path without media): the JSON box stays the way to answer
  editors.set(root, null);
  const start = () => editors.set(root, new BoxEditor(root, img));
  if (img.complete && img.naturalWidth) start();
  else img.addEventListener("load", start, { once: true });
}

function setupAll() {
  for (const root of document.querySelectorAll("[data-boxes]")) setup(root);
}

// Before label.js's keys (it listens on document): keys aimed at a focused image layer are the editor's.
window.addEventListener("keydown", (e) => {
  const svg = e.target && e.target.closest ? e.target.closest("svg.boxes-layer") : null;
  if (!svg || e.ctrlKey || e.metaKey || e.altKey) return;
  const editor = layers.get(svg);
  if (editor && editor.key(e)) {
    e.preventDefault();
    e.stopPropagation();
  }
}, true);

setupAll();
new MutationObserver(setupAll).observe(document.body, { childList: true, subtree: true });
