// Polygons over an image field (the `polygons` question type, labelwright/questions/polygons.py).
//
// Each `[data-polygons]` block of a labelling form gets an SVG layer over its image field's <img>; the SVG's
// viewBox is the image's natural size, so what is drawn is in image pixels whatever size it is shown at
// (the pattern of boxes.js). Click on the image to add points with the chosen label; Enter, a double click
// or a click on the first point closes the polygon, Backspace removes the last point, Escape cancels it.
// Click a polygon (or Tab through them) to select it: drag it to move it, drag its points to reshape it;
// arrows nudge it by a pixel (Shift: ten), Delete or Backspace removes it, Escape unselects, number keys
// pick the label (and relabel the selected polygon). The hidden textarea `name=<question>` holds the JSON
// the server validates.

const SVG = "http://www.w3.org/2000/svg";
const NEAR = 6; // screen pixels: a click this close to the first point closes, to the last is a double click's
const DOUBLE = 500; // milliseconds between the two presses of a double click

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
    if (!Array.isArray(value)) return [];
    return value.filter((p) => p && typeof p === "object" && Array.isArray(p.points))
      .map((p) => ({ label: String(p.label), points: p.points.map((xy) => [Number(xy[0]), Number(xy[1])]) }));
  } catch {
    return [];
  }
}

class PolygonEditor {
  constructor(root, img) {
    this.root = root;
    this.img = img;
    this.input = root.querySelector("textarea.polygons-json");
    this.list = root.querySelector(".polygons-list");
    this.radios = [...root.querySelectorAll("input[type=radio]")];
    for (const r of this.radios) r.closest("label").style.setProperty("--polygon-colour", r.dataset.colour);
    this.polygons = parse(this.input.value);
    this.selected = null;
    this.draft = null; // the points of the polygon being drawn
    this.pointer = null;
    this.drag = null;
    this.pressed = -Infinity; // when the last press was (for double clicks)
    this.input.hidden = true;
    const stage = document.createElement("div");
    stage.className = "polygons-stage";
    img.parentElement.insertBefore(stage, img);
    stage.appendChild(img);
    this.W = img.naturalWidth;
    this.H = img.naturalHeight;
    this.svg = el("svg", { class: "polygons-layer", viewBox: `0 0 ${this.W} ${this.H}`, preserveAspectRatio: "none",
      tabindex: 0, role: "application",
      "aria-label": `Polygons on ${img.alt}: click to add points, Enter closes, Tab selects, arrows nudge` });
    layers.set(this.svg, this);
    stage.appendChild(this.svg);
    this.svg.addEventListener("pointerdown", (e) => this.down(e));
    this.svg.addEventListener("pointermove", (e) => this.move(e));
    this.svg.addEventListener("pointerup", () => this.up());
    this.svg.addEventListener("pointercancel", () => { this.drag = null; this.render(); });
    this.svg.addEventListener("dblclick", (e) => { e.preventDefault(); this.close(); });
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

  get scale() { // image pixels per screen pixel
    return this.W / Math.max(this.svg.getBoundingClientRect().width, 1);
  }

  point(e) {
    const rect = this.svg.getBoundingClientRect();
    const x = ((e.clientX - rect.left) * this.W) / rect.width;
    const y = ((e.clientY - rect.top) * this.H) / rect.height;
    return [round2(Math.min(Math.max(x, 0), this.W)), round2(Math.min(Math.max(y, 0), this.H))];
  }

  near(a, b) {
    return Math.hypot(a[0] - b[0], a[1] - b[1]) <= NEAR * this.scale;
  }

  // move every point of `points` (a copy) by dx, dy, kept inside the image
  translated(points, dx, dy) {
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    const cx = Math.min(Math.max(dx, -Math.min(...xs)), this.W - Math.max(...xs));
    const cy = Math.min(Math.max(dy, -Math.min(...ys)), this.H - Math.max(...ys));
    return points.map(([x, y]) => [round2(x + cx), round2(y + cy)]);
  }

  down(e) {
    if (e.button !== 0) return;
    e.preventDefault();
    this.svg.focus();
    const p = this.point(e);
    const quick = e.timeStamp - this.pressed < DOUBLE; // the second press of a double click
    this.pressed = e.timeStamp;
    if (this.draft) {
      const last = this.draft[this.draft.length - 1];
      if (this.draft.length >= 3 && this.near(p, this.draft[0])) this.close();
      else if (!this.near(p, last)) this.draft.push(p);
      else if (quick) this.close(); // a double click on the last point closes (three points at least)
      this.render();
      return;
    }
    const t = e.target;
    if (t.dataset.v !== undefined && this.selected !== null) {
      this.svg.setPointerCapture(e.pointerId);
      this.drag = { mode: "vertex", j: Number(t.dataset.v) };
    } else if (t.dataset.i !== undefined) {
      this.svg.setPointerCapture(e.pointerId);
      this.selected = Number(t.dataset.i);
      this.drag = { mode: "move", start: p, orig: this.polygons[this.selected].points.map((q) => [...q]) };
    } else if (this.selected !== null) {
      this.selected = null; // a click beside the selected polygon unselects it; the next one starts drawing
    } else {
      this.draft = [p];
      this.pointer = p;
    }
    this.render();
  }

  move(e) {
    const p = this.point(e);
    this.pointer = p;
    const d = this.drag;
    if (d && d.mode === "vertex") {
      this.polygons[this.selected].points[d.j] = p;
    } else if (d && d.mode === "move") {
      this.polygons[this.selected].points = this.translated(d.orig, p[0] - d.start[0], p[1] - d.start[1]);
    } else if (!this.draft) {
      return;
    }
    this.render();
  }

  up() {
    if (!this.drag) return;
    this.drag = null;
    this.render();
    this.save();
  }

  close() {
    if (!this.draft || this.draft.length < 3) return false;
    this.polygons.push({ label: this.label, points: this.draft });
    this.selected = this.polygons.length - 1;
    this.draft = null;
    this.render();
    this.save();
    return true;
  }

  relabel(label) {
    if (this.selected === null) return;
    this.polygons[this.selected].label = label;
    this.render();
    this.save();
  }

  key(e) {
    const k = e.key;
    if (/^[1-9]$/.test(k)) {
      const r = this.radios.find((x) => x.dataset.polygonKey === k);
      if (!r) return false;
      r.checked = true;
      if (!this.draft) this.relabel(r.value);
      else this.render();
      return true;
    }
    if (this.draft) {
      if (k === "Enter") this.close(); // too few points: nothing, and the form is not sent mid-drawing
      else if (k === "Backspace") {
        this.draft.pop();
        if (!this.draft.length) this.draft = null;
      } else if (k === "Escape") this.draft = null;
      else return false;
      this.render();
      return true;
    }
    if (k === "Tab") {
      const n = this.polygons.length;
      if (!n) return false;
      const step = e.shiftKey ? -1 : 1;
      const next = this.selected === null ? (step > 0 ? 0 : n - 1) : this.selected + step;
      this.selected = next >= 0 && next < n ? next : null;
      this.render();
      return this.selected !== null; // past the last (or first) one, Tab leaves the image as usual
    }
    if (k === "Escape") {
      if (this.selected === null) return false;
      this.selected = null;
      this.render();
      return true;
    }
    if (this.selected === null) return false;
    const poly = this.polygons[this.selected];
    if (k === "Delete" || k === "Backspace") {
      this.polygons.splice(this.selected, 1);
      this.selected = null;
    } else if (k.startsWith("Arrow")) {
      const step = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[k];
      if (!step) return false;
      const n = e.shiftKey ? 10 : 1;
      poly.points = this.translated(poly.points, step[0] * n, step[1] * n);
    } else {
      return false;
    }
    this.render();
    this.save();
    return true;
  }

  save() {
    const value = this.polygons.map((p) => ({ label: p.label, points: p.points.map(([x, y]) => [x, y]) }));
    this.input.value = JSON.stringify(value);
    this.input.dispatchEvent(new Event("input", { bubbles: true }));
  }

  vertex(p, j, extra) {
    const c = el("circle", { cx: p[0], cy: p[1], r: 5 * this.scale, class: `polygon-vertex${extra}` });
    if (j !== null) c.dataset.v = j;
    return c;
  }

  render() {
    this.svg.replaceChildren();
    this.polygons.forEach((poly, i) => {
      const shape = el("polygon", { points: poly.points.map((p) => p.join(",")).join(" "), class: "polygon",
        stroke: this.colour(poly.label), "vector-effect": "non-scaling-stroke" });
      shape.dataset.i = i;
      if (i === this.selected) shape.classList.add("is-selected");
      this.svg.appendChild(shape);
    });
    if (this.selected !== null && this.polygons[this.selected]) {
      this.polygons[this.selected].points.forEach((p, j) => this.svg.appendChild(this.vertex(p, j, "")));
    }
    if (this.draft) {
      const pts = this.pointer ? [...this.draft, this.pointer] : this.draft;
      this.svg.appendChild(el("polyline", { points: pts.map((p) => p.join(",")).join(" "), class: "polygon-draft",
        stroke: this.colour(this.label), "vector-effect": "non-scaling-stroke" }));
      this.draft.forEach((p, j) => this.svg.appendChild(this.vertex(p, null, j === 0 ? " is-first" : "")));
    }
    const items = this.polygons.map((poly, i) => {
      const li = document.createElement("li");
      li.textContent = `${poly.label}: ${poly.points.length} points`;
      if (i === this.selected) li.className = "is-selected";
      return li;
    });
    if (this.draft) {
      const li = document.createElement("li");
      li.className = "is-draft";
      li.textContent = `${this.label}: drawing, ${this.draft.length} point${this.draft.length === 1 ? "" : "s"}`;
      items.push(li);
    }
    this.list.replaceChildren(...items);
  }
}

const editors = new WeakMap(); // [data-polygons] block -> its editor (null while its image loads)
const layers = new WeakMap(); // SVG layer -> its editor

function setup(root) {
  if (editors.has(root)) return;
  const img = findImage(root);
  if (!img) return; // no image shown (a path without media): the JSON box stays the way to answer
  editors.set(root, null);
  const start = () => editors.set(root, new PolygonEditor(root, img));
  if (img.complete && img.naturalWidth) start();
  else img.addEventListener("load", start, { once: true });
}

function setupAll() {
  for (const root of document.querySelectorAll("[data-polygons]")) setup(root);
}

// Before label.js's keys (it listens on document): keys aimed at a focused image layer are the editor's.
window.addEventListener("keydown", (e) => {
  const svg = e.target && e.target.closest ? e.target.closest("svg.polygons-layer") : null;
  if (!svg || e.ctrlKey || e.metaKey || e.altKey) return;
  const editor = layers.get(svg);
  if (editor && editor.key(e)) {
    e.preventDefault();
    e.stopPropagation();
  }
}, true);

setupAll();
new MutationObserver(setupAll).observe(document.body, { childList: true, subtree: true });
