// The chat question (labelwright/questions/templates/chat.html): rate each assistant turn, write a better one.
//
//   j / ↓      the next assistant turn (↓ past the last one goes on to the next question, as elsewhere)
//   k / ↑      the previous assistant turn
//   1-9, 0     rate the focused turn (the scale's keys, shown on its points); the next unrated turn follows
//   e          write a better version of the focused turn (the box starts with the turn; Esc leaves it)
//   Enter      submit (label.js)
//
// The mouse works as well: a click on a turn focuses it, a click on a point rates it, "Write a better
// turn" opens the box. A rewrite left as the turn was is emptied when the box loses the focus (the server
// refuses one too). In rank mode the number keys place the candidate replies (label.js's ranking keys) and
// this script only moves between turns and opens rewrite boxes. Keys act while the chat question is the
// active one (label.js marks it is-active) or holds the focus, before label.js sees them. The answer is the
// form's own fields; nothing here builds markup from item data (turns are only read with textContent).

const views = new WeakMap();

function mount(root) {
  let s = views.get(root);
  if (s) return s;
  s = { root, rate: root.dataset.mode === "rate", turns: Array.from(root.querySelectorAll("[data-assistant]")), at: -1 };
  views.set(root, s);
  s.turns.forEach((turn, i) => {
    turn.addEventListener("pointerdown", () => focusTurn(s, i, { scroll: false }));
    for (const radio of turn.querySelectorAll("input[type=radio]")) {
      radio.addEventListener("change", (event) => {
        event.stopPropagation(); // a rating is one of several on this question: label.js must not move on
        focusTurn(s, i, { scroll: false });
        mark(s);
      });
    }
    const box = turn.querySelector("[data-rewrite]");
    if (box) box.addEventListener("blur", () => keepOnlyChanged(turn, box));
  });
  mark(s);
  const first = s.turns.findIndex((t) => !rated(t));
  focusTurn(s, first >= 0 ? first : 0, { scroll: false });
  return s;
}

function rated(turn) {
  return turn.querySelector("input[type=radio]:checked") !== null;
}

function mark(s) {
  for (const t of s.turns) t.classList.toggle("is-rated", rated(t));
}

function focusTurn(s, i, { scroll = true } = {}) {
  if (i < 0 || i >= s.turns.length) return;
  s.at = i;
  s.turns.forEach((t, k) => t.classList.toggle("is-focused", k === i));
  if (scroll) s.turns[i].scrollIntoView({ block: "nearest" });
}

function say(s, message) {
  const region = s.root.closest("#item-region") || document;
  const flash = region.querySelector("#flash");
  if (flash) flash.textContent = message;
}

function content(turn) {
  const el = turn.querySelector("[data-content]");
  return el ? el.textContent : "";
}

function keepOnlyChanged(turn, box) {
  if (box.value.trim() === content(turn).trim()) {
    box.value = "";
    box.closest("details").open = false;
  }
}

function rate(s, key) {
  const turn = s.turns[s.at];
  const radio = turn && turn.querySelector(`input[data-point-key="${CSS.escape(key)}"]`);
  if (!radio) return false;
  radio.checked = true;
  mark(s);
  say(s, `Turn ${turn.dataset.turn} rated ${radio.value}`);
  const next = s.turns.findIndex((t, k) => k > s.at && !rated(t));
  const any = next >= 0 ? next : s.turns.findIndex((t) => !rated(t));
  if (any >= 0) focusTurn(s, any);
  return true;
}

function rewrite(s) {
  const turn = s.turns[s.at];
  const box = turn && turn.querySelector("[data-rewrite]");
  if (!box) return false;
  box.closest("details").open = true;
  if (!box.value) box.value = content(turn);
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);
  return true;
}

function activeRoot(event) {
  const inside = event.target && event.target.closest && event.target.closest("[data-chat]");
  if (inside) return inside;
  return document.querySelector(".question.is-active [data-chat]");
}

function onKey(event) {
  if (event.defaultPrevented || event.isComposing || event.ctrlKey || event.metaKey || event.altKey) return;
  const t = event.target;
  if (t && (t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable
            || (t.tagName === "INPUT" && !["radio", "checkbox", "hidden"].includes(t.type)))) return;
  const root = activeRoot(event);
  if (!root || !root.isConnected || root.offsetParent === null) return; // not shown (a closed review form)
  const s = mount(root);
  if (!s.turns.length) return;
  const key = event.key;
  let done = false;
  if (key === "j" || key === "ArrowDown") {
    done = s.at < s.turns.length - 1 || key === "j";
    if (done) focusTurn(s, Math.min(s.at + 1, s.turns.length - 1));
  } else if (key === "k" || key === "ArrowUp") {
    done = s.at > 0 || key === "k";
    if (done) focusTurn(s, Math.max(s.at - 1, 0));
  } else if (key === "e" || key === "E") {
    done = rewrite(s);
  } else if (s.rate && /^[0-9]$/.test(key)) {
    done = rate(s, key);
  }
  if (done) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}

function mountAll() {
  document.querySelectorAll("[data-chat]").forEach((root) => mount(root));
}

window.addEventListener("keydown", onKey, true); // before label.js's listener on the document
new MutationObserver(mountAll).observe(document.body, { childList: true, subtree: true });
mountAll();
