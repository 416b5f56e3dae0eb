// The spans question (labelwright/questions/templates/spans.html): select ranges of a text and label them.
//
//   mouse      select text in the box (the selection is trimmed of spaces at its ends)
//   → / ←      select the next / previous word
//   Shift+→ ←  extend or shrink the selection by a word
//   a label's key (shown on its button; 1-9 unless set)   label the selection (a click on the button too)
//   Delete     remove the spans under the selection
//   Esc        clear the selection
//
// The keys act while the spans question is the active one (label.js marks it is-active) or has the focus;
// they are taken before label.js sees them, so a number labels a span instead of choosing elsewhere.
// Offsets are code points, as the server counts them; the answer is the JSON in the hidden input.
// Items swapped in by the labelling page (instant items) are picked up as they join the document.

const boxes = new WeakMap();

function tokens(chars) {
  const out = [];
  let start = -1;
  chars.forEach((c, i) => {
    const space = /\s/.test(c);
    if (!space && start < 0) start = i;
    if (space && start >= 0) { out.push([start, i]); start = -1; }
  });
  if (start >= 0) out.push([start, chars.length]);
  return out;
}

function mount(root) {
  let s = boxes.get(root);
  if (s) return s;
  let text = "";
  try { text = JSON.parse(root.dataset.text || '""'); } catch { text = ""; }
  const chars = Array.from(text);
  const input = root.querySelector("[data-spans-value]");
  let spans = [];
  try { spans = JSON.parse(input.value || "[]"); } catch { spans = []; }
  s = {
    root, chars, input, spans, toks: tokens(chars),
    box: root.querySelector("[data-spans-text]"),
    list: root.querySelector("[data-spans-list]"),
    labels: Array.from(root.querySelectorAll("[data-span-label]")),
    overlap: root.dataset.allowOverlap === "true",
    sel: null, // { start, end, anchor, focus }: character range, and the words it runs between
  };
  boxes.set(root, s);
  s.labels.forEach((b, i) => {
    b.dataset.color = String(i);
    b.addEventListener("click", () => apply(s, b));
  });
  s.box.addEventListener("mouseup", () => fromMouse(s));
  render(s);
  return s;
}

function labelButton(s, value) {
  return s.labels.find((b) => b.dataset.spanLabel === value);
}

function segment(s, a, b, classes, title) {
  const el = document.createElement("span");
  el.className = ["seg", ...classes].join(" ");
  el.textContent = s.chars.slice(a, b).join(""); // text, never markup
  if (title) el.title = title;
  return el;
}

function render(s) {
  const cuts = new Set([0, s.chars.length]);
  for (const sp of s.spans) { cuts.add(sp.start); cuts.add(sp.end); }
  if (s.sel) { cuts.add(s.sel.start); cuts.add(s.sel.end); }
  const points = Array.from(cuts).filter((c) => c >= 0 && c <= s.chars.length).sort((x, y) => x - y);
  const parts = [];
  for (let k = 0; k + 1 < points.length; k += 1) {
    const [a, b] = [points[k], points[k + 1]];
    const over = s.spans.filter((sp) => sp.start <= a && sp.end >= b);
    const classes = [];
    if (over.length) {
      const top = labelButton(s, over[over.length - 1].label);
      classes.push("is-span", `span-c${top ? Number(top.dataset.color) % 8 : 7}`);
      if (over.length > 1) classes.push("is-overlap");
    }
    if (s.sel && s.sel.start <= a && s.sel.end >= b) classes.push("is-selected");
    parts.push(segment(s, a, b, classes, over.map((sp) => sp.label).join(", ")));
  }
  s.box.replaceChildren(...parts);
  s.list.replaceChildren(...s.spans.map((sp, i) => {
    const li = document.createElement("li");
    const name = document.createElement("kbd");
    const button = labelButton(s, sp.label);
    name.textContent = button ? button.dataset.spanText : sp.label;
    const words = document.createElement("span");
    words.textContent = `“${s.chars.slice(sp.start, sp.end).join("")}” ${sp.start}–${sp.end}`;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "×";
    remove.setAttribute("aria-label", `Remove ${name.textContent} ${words.textContent}`);
    remove.addEventListener("click", () => { s.spans.splice(i, 1); save(s); });
    li.append(name, words, remove);
    return li;
  }));
}

function save(s) {
  s.spans.sort((x, y) => x.start - y.start || x.end - y.end);
  s.input.value = JSON.stringify(s.spans.map(({ start, end, label }) => ({ start, end, label })));
  s.input.dispatchEvent(new Event("change", { bubbles: true }));
  render(s);
}

function say(s, message) {
  const flash = document.getElementById("flash");
  if (flash) flash.textContent = message;
}

function select(s, anchor, focus) {
  const [a, b] = anchor <= focus ? [anchor, focus] : [focus, anchor];
  s.sel = { start: s.toks[a][0], end: s.toks[b][1], anchor, focus };
  render(s);
}

function apply(s, button) {
  if (!s.sel) { say(s, "Select some text first"); return; }
  const span = { start: s.sel.start, end: s.sel.end, label: button.dataset.spanLabel };
  if (s.spans.some((x) => x.start === span.start && x.end === span.end && x.label === span.label)) return;
  if (!s.overlap) {
    s.spans = s.spans.filter((x) => x.end <= span.start || x.start >= span.end); // the new span replaces them
  }
  s.spans.push(span);
  say(s, `${button.dataset.spanText}: “${s.chars.slice(span.start, span.end).join("")}”`);
  save(s);
}

// Code-point offset of (node, offset) in the text box.
function offsetOf(s, node, offset) {
  let count = 0;
  const walker = document.createTreeWalker(s.box, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    if (t === node) return count + Array.from(t.data.slice(0, offset)).length;
    count += Array.from(t.data).length;
  }
  if (node === s.box) { // an offset between the box's children
    return Array.from(s.box.childNodes).slice(0, offset).reduce((n, c) => n + Array.from(c.textContent).length, 0);
  }
  return null;
}

function fromMouse(s) {
  const range = window.getSelection();
  if (!range || range.rangeCount === 0 || range.isCollapsed) return;
  const r = range.getRangeAt(0);
  if (!s.box.contains(r.startContainer) || !s.box.contains(r.endContainer)) return;
  let a = offsetOf(s, r.startContainer, r.startOffset);
  let b = offsetOf(s, r.endContainer, r.endOffset);
  if (a === null || b === null) return;
  while (a < b && /\s/.test(s.chars[a])) a += 1;
  while (b > a && /\s/.test(s.chars[b - 1])) b -= 1;
  if (a >= b) return;
  const anchor = Math.max(0, s.toks.findIndex((t) => t[1] > a));
  let focus = s.toks.findIndex((t) => t[0] >= b) - 1;
  if (focus < 0) focus = s.toks.length - 1;
  s.sel = { start: a, end: b, anchor, focus };
  range.removeAllRanges();
  render(s);
}

function activeBox(event) {
  const inside = event.target && event.target.closest && event.target.closest("[data-spans]");
  if (inside) return inside;
  return document.querySelector(".question.is-active [data-spans]");
}

function onKey(event) {
  if (event.defaultPrevented || event.isComposing || event.ctrlKey || event.metaKey || event.altKey) return;
  const t = event.target;
  if (t && (t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable
            || (t.tagName === "INPUT" && !["radio", "checkbox", "hidden"].includes(t.type)))) return;
  const root = activeBox(event);
  if (!root || !root.isConnected) return;
  const s = mount(root);
  const key = event.key;
  let done = true;
  if ((key === "ArrowRight" || key === "ArrowLeft") && s.toks.length) {
    const step = key === "ArrowRight" ? 1 : -1;
    const last = s.toks.length - 1;
    if (!s.sel) select(s, step > 0 ? 0 : last, step > 0 ? 0 : last);
    else if (event.shiftKey) select(s, s.sel.anchor, Math.min(last, Math.max(0, s.sel.focus + step)));
    else {
      const next = Math.min(last, Math.max(0, (step > 0 ? Math.max(s.sel.anchor, s.sel.focus)
        : Math.min(s.sel.anchor, s.sel.focus)) + step));
      select(s, next, next);
    }
  } else if (key === "Escape" && s.sel) {
    s.sel = null;
    render(s);
  } else if (key === "Delete" && s.sel) {
    const { start, end } = s.sel;
    const before = s.spans.length;
    s.spans = s.spans.filter((x) => x.end <= start || x.start >= end);
    say(s, `${before - s.spans.length} span(s) removed`);
    save(s);
  } else {
    const button = key.length === 1
      && s.labels.find((b) => b.dataset.spanKey && b.dataset.spanKey.toLowerCase() === key.toLowerCase());
    if (button) apply(s, button);
    else done = false;
  }
  if (done) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}

function mountAll() {
  document.querySelectorAll("[data-spans]").forEach((root) => mount(root));
}

window.addEventListener("keydown", onKey, true); // before label.js's listener on the document
new MutationObserver(mountAll).observe(document.body, { childList: true, subtree: true });
mountAll();
