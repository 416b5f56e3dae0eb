// Accessibility checks run in the page by tests/browser/test_a11y.py (no third-party script).
//
// focusReport(): the focused element's focus indicator, found on the element, its next sibling (a styled
// box for a hidden radio) or its label: an outline or a box-shadow ring at least 2 px wide, and the contrast
// of its colour against the background around it (WCAG 2.2 "focus appearance": at least 3:1).
// scrollRegions(): every element that scrolls (content wider or taller than its box) and whether the keyboard
// can reach it (it is focusable itself: tabindex="0", so arrow keys scroll it).
(() => {
  function parse(c) {
    const m = c && c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  }
  function blend(fg, bg) {
    return { r: fg.r * fg.a + bg.r * (1 - fg.a), g: fg.g * fg.a + bg.g * (1 - fg.a),
             b: fg.b * fg.a + bg.b * (1 - fg.a), a: 1 };
  }
  function lum(c) {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  }
  function contrast(a, b) {
    const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  }
  function background(el) {
    const layers = [];
    for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let out = { r: 255, g: 255, b: 255, a: 1 };
    for (let i = layers.length - 1; i >= 0; i--) out = blend(layers[i], out);
    return out;
  }
  function ring(el) {
    const cs = getComputedStyle(el);
    const found = [];
    if (cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) >= 2) {
      found.push({ kind: "outline", color: parse(cs.outlineColor), width: parseFloat(cs.outlineWidth) });
    }
    if (cs.boxShadow && cs.boxShadow !== "none") {
      for (const part of cs.boxShadow.split(/,(?![^(]*\))/)) {
        const color = parse(part);
        const nums = part.replace(/rgba?\([^)]*\)/, "").trim().split(/\s+/).filter((t) => /px$/.test(t)).map(parseFloat);
        const spread = nums.length >= 4 ? nums[3] : 0;
        if (color && spread >= 2 && !/inset/.test(part)) found.push({ kind: "box-shadow", color, width: spread });
      }
    }
    return found;
  }
  function describe(el) {
    const bits = [el.tagName.toLowerCase()];
    if (el.id) bits.push("#" + el.id);
    if (el.getAttribute("name")) bits.push(`[name=${el.getAttribute("name")}]`);
    if (el.getAttribute("value") && el.tagName === "INPUT") bits.push(`[value=${el.getAttribute("value")}]`);
    if (el.className && typeof el.className === "string") bits.push("." + el.className.trim().split(/\s+/).join("."));
    const t = (el.innerText || el.value || el.getAttribute("aria-label") || "").trim().slice(0, 30);
    if (t) bits.push(JSON.stringify(t));
    return bits.join("");
  }
  window.__a11y = {
    focusReport() {
      const el = document.activeElement;
      if (!el || el === document.body || el === document.documentElement) return null;
      const candidates = [el, el.nextElementSibling, el.closest("label")].filter(Boolean);
      let best = null;
      for (const c of candidates) {
        const bg = background(c.parentElement || c);
        for (const r of ring(c)) {
          const ratio = contrast(blend(r.color, bg), bg);
          if (!best || ratio > best.ratio) best = { ratio: Math.round(ratio * 100) / 100, on: describe(c), kind: r.kind };
        }
      }
      const rect = el.getBoundingClientRect();
      return { el: describe(el), best, visible: rect.width > 0 && rect.height > 0 };
    },
    scrollRegions() {
      const out = [];
      for (const el of document.querySelectorAll("body *")) {
        const cs = getComputedStyle(el);
        const sx = /(auto|scroll)/.test(cs.overflowX) && el.scrollWidth > el.clientWidth + 1;
        const sy = /(auto|scroll)/.test(cs.overflowY) && el.scrollHeight > el.clientHeight + 1;
        if (!(sx || sy)) continue;
        const focusable = el.tabIndex >= 0 && (el.hasAttribute("tabindex") || /^(TEXTAREA|SELECT)$/.test(el.tagName));
        const named = Boolean(el.getAttribute("aria-label") || el.getAttribute("aria-labelledby")
                              || (el.labels && el.labels.length));
        out.push({ el: describe(el), focusable, named });
      }
      return out;
    },
  };
})();
