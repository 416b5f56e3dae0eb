// The labelling page: its keyboard, instant items, the lease clock and the active-time field.
//
//   1-9        choose an option of the active question (then the next question becomes active);
//              on a ranking, pressing candidate numbers best first builds the ranking, R resets it
//   ↑ / ↓      previous / next question
//   Enter      submit (Ctrl+Enter or Cmd+Enter also from inside a text box)
//   Esc        leave a text box, so the keys above work again
//   S          skip this item
//   Backspace  go back to your previous answer to change it (on a change page: further back)
//
// Keys never fire while typing in a text box or a select, except Ctrl+Enter.
//
// The active question is explicit: it is outlined, and the line above the questions names it ("Number keys
// answer: ..."). On the labelling page a number key never silently changes a question that is already
// answered (after a click or Esc the active question may be one answered before): the first press says
// what the answer is and what the key would change it to, a second press of the same key changes it.
// Every change made by a key flashes the option and says what changed. On a change page (amend), whose
// answers are there to be changed, one press changes and flashes.
//
// A question with the assistant's answer pre-selected (class has-suggestion) shows it marked as a suggestion
// until the person chooses there (a click or a key, even on the suggested option): then the mark goes away
// and the choice is theirs. Enter with the suggestion still selected submits it as is.
//
// Instant items (see labelwright/web/instant.py): the page prefetches the next item (rendered by the
// server) while the annotator works. Enter swaps it in at once and sends the answers with fetch; the URL
// (history.pushState, ?item=N) changes once the server has saved them. A form with errors comes back and is
// shown again in place of the next item, which waits. Without a prefetched item (the first moments on the
// page, the end of the queue) the form is submitted as a normal page load, which is also all that happens
// without JavaScript. A prefetched item the page will not show is released when the page goes away.
import { ActiveTimer } from "./activity.js";
import { isRanking, isTyping, placeRank, resetRanking, showRanking } from "./questions.js";

const timer = new ActiveTimer().start();
const counts = document.getElementById("counts");
const views = new WeakMap(); // each item region's controls and state, bound once
const CONFIRM_MS = 4000; // a second press of the same key within this long changes an answered question
const RENEW_MS = 60_000; // how often a prefetched item's short lease is renewed
// The item and its form; on pages without instant items (the check queue, "all done") the whole page.
let region = document.getElementById("item-region") || document.querySelector("main");
let view = null; // the item on screen
let sending = false; // a full-page submit is on its way
let pending = Promise.resolve(); // the last instant save: leaving the page waits for it
let prefetched = null; // { itemId, el }: the next item, rendered, outside the document
let prefetching = false;
let saving = 0; // instant saves on their way

// Which item is prefetched, on <body data-prefetched>: for tests and benchmarks to wait on ("" for none).
function setPrefetched(next) {
  prefetched = next;
  document.body.dataset.prefetched = next ? next.itemId : "";
}

function textBox(q) {
  return q.querySelector("[data-text-answer]");
}

function legendText(q) {
  const legend = q.querySelector("legend");
  const clone = legend.cloneNode(true);
  for (const extra of clone.querySelectorAll(".qnum, .optional")) extra.remove();
  return clone.textContent.trim();
}

function optionText(input) {
  if (!input) return "";
  const label = input.closest("label");
  const text = label && (label.querySelector(".choice-label") || label.querySelector("span"));
  if (!text) return input.value;
  const clone = text.cloneNode(true);
  for (const extra of clone.querySelectorAll("kbd, .suggestion-badge")) extra.remove();
  return clone.textContent.trim();
}

// ---- the item on screen ---------------------------------------------------------------------

function mount(el) {
  let v = views.get(el);
  if (v) return v;
  const form = el.querySelector("#answer-form");
  v = {
    el,
    itemId: el.dataset.itemId,
    mode: el.dataset.mode,
    instant: el.dataset.instant || null,
    form,
    skipForm: el.querySelector("#skip-form"),
    backLink: el.querySelector("#back-link"),
    activeField: el.querySelector("#active-ms"),
    questions: form ? Array.from(form.querySelectorAll(".question")) : [],
    target: el.querySelector("#keys-target"),
    targetName: el.querySelector("#keys-target-name"),
    flash: el.querySelector("#flash"),
    lease: el.querySelector("#lease"),
    deadline: el.dataset.leaseLeft ? performance.now() + Number(el.dataset.leaseLeft) * 1000 : null,
    active: -1,
    start: 0, // the question to start on
    startScroll: false,
    armed: null, // { input, at }: a change of an answered question waiting for its second press
    ms: 0, // active time so far, kept while the item is off screen
  };
  views.set(el, v);
  if (!form) return v;
  v.questions.forEach((q, i) => {
    if (q.classList.contains("has-suggestion")) {
      const chosen = () => q.classList.remove("has-suggestion");
      q.addEventListener("change", chosen);
      q.addEventListener("click", (event) => { if (event.target.tagName === "INPUT") chosen(); });
    }
    q.addEventListener("focusin", () => { if (v.active !== i) activate(v, i, { scroll: false }); });
    q.addEventListener("pointerdown", () => { if (v.active !== i) activate(v, i, { scroll: false }); });
    if (isRanking(q)) {
      q.addEventListener("change", () => showRanking(q));
      q.querySelector("[data-ranking-reset]").addEventListener("click", () => resetRanking(q));
      showRanking(q);
    }
  });
  // A click on an option of a one-answer question answers it: the next question becomes active, as after
  // a number key, so the next number goes where the person is looking.
  form.addEventListener("change", (event) => {
    const input = event.target;
    if (!event.isTrusted || input.type !== "radio") return;
    const i = v.questions.indexOf(input.closest(".question"));
    if (i === v.active && !input.closest(".question").querySelector("textarea[data-required-rationale]")) {
      activate(v, Math.min(i + 1, v.questions.length - 1), { scroll: false });
    }
  });
  form.addEventListener("submit", (event) => onSubmit(event, v, form));
  if (v.skipForm) v.skipForm.addEventListener("submit", (event) => onSubmit(event, v, v.skipForm));
  if (v.target) v.target.hidden = false;
  // Start on the first question with an error, else the first.
  const firstError = v.questions.findIndex((q) => q.classList.contains("has-error"));
  v.start = firstError >= 0 ? firstError : 0;
  v.startScroll = firstError >= 0;
  return v;
}

function activate(v, index, { focusText = false, scroll = true } = {}) {
  if (!(index >= 0 && index < v.questions.length)) return;
  v.active = index;
  v.armed = null;
  v.questions.forEach((q, i) => q.classList.toggle("is-active", i === index));
  const q = v.questions[index];
  if (v.targetName) v.targetName.textContent = `${index + 1} · ${legendText(q)}`;
  const box = textBox(q);
  if (focusText && box) {
    box.focus({ preventScroll: !scroll });
  } else if (scroll) {
    q.scrollIntoView({ block: "nearest" });
  }
}

function nextQuestion(v) {
  if (v.active < v.questions.length - 1) activate(v, v.active + 1, { focusText: true });
}

function say(v, message, { warn = false } = {}) {
  if (!v.flash) return;
  v.flash.textContent = message;
  v.flash.classList.toggle("is-warning", warn);
  v.flash.classList.remove("is-fresh");
  void v.flash.offsetWidth; // restart the animation
  v.flash.classList.add("is-fresh");
}

function flashOption(input) {
  const label = input.closest("label");
  if (!label) return;
  label.classList.remove("flashed");
  void label.offsetWidth;
  label.classList.add("flashed");
}

// Show ``el`` (an item region) in place of the one on screen; returns its view.
function show(el, { deadline = null } = {}) {
  if (view) view.ms = timer.ms;
  region.replaceWith(el);
  region = el;
  const v = mount(el);
  view = v;
  timer.reset(v.ms);
  if (deadline !== null) v.deadline = deadline;
  tickLease();
  const touch = window.matchMedia("(pointer: coarse)").matches;
  if (v.active < 0) activate(v, v.start, { focusText: !touch, scroll: v.startScroll });
  else activate(v, v.active, { scroll: false });
  if (el.getBoundingClientRect().top < 0) el.scrollIntoView({ block: "start" });
  return v;
}

// ---- ranking ----------------------------------------------------------------------------------

function rankNext(v, q, key) {
  const placed = placeRank(q, key);
  if (placed === null) return false;
  if (placed) nextQuestion(v);
  return true;
}

// ---- choosing ---------------------------------------------------------------------------------

function choose(v, key) {
  const q = v.questions[v.active];
  if (!q) return false;
  if (isRanking(q)) return rankNext(v, q, key);
  const input = q.querySelector(`input[data-key="${key}"]`);
  if (!input) return false;
  const title = legendText(q);
  if (input.type === "checkbox") {
    input.checked = !input.checked; // several may apply: stay on this question
    input.dispatchEvent(new Event("change", { bubbles: true }));
    flashOption(input);
    say(v, `${title}: ${optionText(input)} ${input.checked ? "ticked" : "unticked"}`);
    return true;
  }
  const before = q.querySelector("input[type=radio]:checked");
  const suggested = q.classList.contains("has-suggestion"); // the assistant's answer, not yet the person's
  if (before && before !== input && !suggested && v.mode === "label") {
    const armed = v.armed && v.armed.input === input && performance.now() - v.armed.at < CONFIRM_MS;
    if (!armed) {
      v.armed = { input, at: performance.now() };
      flashOption(before);
      say(v, `${title} is already answered: ${optionText(before)}. Press ${key} again to change it to `
        + `${optionText(input)}, or ↓ for the next question.`, { warn: true });
      return true;
    }
  }
  v.armed = null;
  input.checked = true;
  input.dispatchEvent(new Event("change", { bubbles: true }));
  flashOption(input);
  say(v, before && before !== input
    ? `${title}: changed from ${optionText(before)} to ${optionText(input)}`
    : `${title}: ${optionText(input)}`);
  const rationale = q.querySelector("textarea[data-required-rationale]");
  if (rationale) rationale.focus();
  else nextQuestion(v);
  return true;
}

// ---- saving -----------------------------------------------------------------------------------

function csrf() {
  const field = region.querySelector("input[name=csrf]");
  return field ? field.value : "";
}

function post(url, body) {
  return fetch(url, { method: "POST", body, credentials: "same-origin",
                      headers: { Accept: "application/json" } });
}

function setCounts(c) {
  if (!counts || !c) return;
  const numbers = counts.querySelectorAll("strong");
  numbers[0].textContent = String(c.done);
  numbers[1].textContent = String(c.left);
}

function setBack(v, url) {
  if (!v.backLink && url) {
    const actions = v.form && v.form.querySelector(".actions");
    if (!actions) return;
    const a = document.createElement("a");
    a.className = "button secondary";
    a.id = "back-link";
    a.title = "Backspace";
    a.append("Previous ");
    const kbd = document.createElement("kbd");
    kbd.textContent = "⌫";
    a.append(kbd);
    actions.append(a);
    v.backLink = a;
  }
  if (v.backLink && url) v.backLink.href = url;
}

function parseRegion(html) {
  const holder = document.createElement("div");
  holder.innerHTML = html; // the server's escaped markup; pictures start loading now
  return holder.querySelector("#item-region");
}

function labelUrl(itemId) {
  return `${location.pathname}?item=${itemId}`;
}

function onSubmit(event, v, form) {
  if (sending) {
    event.preventDefault(); // a second Enter while the first submit is on its way
    return;
  }
  if (v.activeField && form === v.form) v.activeField.value = String(timer.ms);
  if (v === view && v.instant && prefetched) {
    event.preventDefault();
    sendInstantly(v, form);
    return;
  }
  event.preventDefault();
  pending.then(() => { // an instant save still on its way goes first
    sending = true;
    for (const b of document.querySelectorAll("button[type=submit]")) b.disabled = true;
    form.submit();
  });
}

function sendInstantly(v, form) {
  const body = new FormData(form);
  const next = prefetched;
  setPrefetched(null);
  body.set("promote", next.itemId);
  // Its lease runs the project's full time from now (the server confirms it in its answer).
  const lease = next.el.querySelector("#lease");
  const total = lease ? Number(lease.dataset.total) : 0;
  const shown = show(next.el, { deadline: total ? performance.now() + total * 1000 : null });
  const answered = v;
  saving += 1;
  pending = post(form.action, body).then(async (r) => {
    let data = null;
    try { data = await r.json(); } catch { data = null; }
    if (r.ok && data && data.saved) {
      setCounts(data.counts);
      setBack(shown, data.back_url);
      if (data.promoted === false) { // the shown item lapsed meanwhile: start over from the server
        location.replace(location.pathname);
        return;
      }
      if (data.lease_left !== null && view === shown) shown.deadline = performance.now() + data.lease_left * 1000;
      if (data.next && view === shown) setPrefetched({ itemId: String(data.next.item_id), el: parseRegion(data.next.html) });
      history.pushState({ item: shown.itemId }, "", labelUrl(shown.itemId));
      return;
    }
    if (r.status === 422 && data && data.html) {
      // Not saved: the answered item comes back with its errors; the item shown meanwhile waits.
      if (view === shown) setPrefetched({ itemId: shown.itemId, el: shown.el });
      const again = show(parseRegion(data.html));
      again.ms = answered.ms;
      timer.reset(answered.ms); // its lease: renewed by the server, as the page's data-lease-left says
      say(again, "Your answer was not saved: see the message next to the question.", { warn: true });
      return;
    }
    say(view, `Your answer to the previous item was not saved: ${(data && data.error) || `the server answered ${r.status}`}`,
      { warn: true });
  }).catch(() => {
    say(view, "Your answer to the previous item was not saved: the server could not be reached. "
      + "Reload the page and answer it again.", { warn: true });
  }).finally(() => { saving -= 1; });
}

// Ask for the next item (or renew the one prefetched), for the item on screen.
function requestPrefetch() {
  const v = view;
  if (!v || !v.instant || prefetching || sending || saving) return;
  const body = new FormData();
  body.set("csrf", csrf());
  body.set("current", v.itemId);
  if (prefetched) body.set("have", prefetched.itemId);
  prefetching = true;
  post(v.instant, body)
    .then((r) => (r.ok ? r.json() : null))
    .then((data) => {
      if (!data || view !== v) return; // the page moved on meanwhile: that answer is old
      const n = data.next;
      if (!n) setPrefetched(null);
      else if (n.html) setPrefetched({ itemId: String(n.item_id), el: parseRegion(n.html) });
    })
    .catch(() => {})
    .finally(() => { prefetching = false; });
}

function releasePrefetched() {
  if (!prefetched || !view || !view.instant) return;
  const body = new FormData();
  body.set("csrf", csrf());
  const slug = location.pathname.split("/")[2];
  navigator.sendBeacon(`/projects/${slug}/items/${prefetched.itemId}/release`, body);
  setPrefetched(null);
}

// ---- the lease clock --------------------------------------------------------------------------

function clock(seconds) {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function tickLease() {
  const v = view;
  if (!v || !v.lease || v.deadline === null) return;
  const left = Math.max(0, Math.ceil((v.deadline - performance.now()) / 1000));
  const out = v.lease.querySelector("#lease-left");
  const note = v.lease.querySelector("#lease-note");
  const text = clock(left);
  if (out.textContent !== text) out.textContent = text;
  const ending = left > 0 && left <= 60;
  v.lease.classList.toggle("is-ending", ending);
  v.lease.classList.toggle("is-over", left === 0);
  if (left === 0) {
    note.textContent = "Time is up: this item is no longer reserved for you. Submitting still saves your answer "
      + "while the item needs more answers; if others have finished it, nothing is saved and you get the next item.";
  } else if (ending) {
    note.textContent = "Less than a minute left: submit soon. Afterwards the item may go to someone else.";
  }
}

// ---- wiring -----------------------------------------------------------------------------------

const instructions = document.getElementById("instructions");
if (instructions && instructions.dataset.remember) {
  const key = instructions.dataset.remember;
  try {
    if (localStorage.getItem(key) === "closed") instructions.open = false;
    instructions.addEventListener("toggle", () => localStorage.setItem(key, instructions.open ? "open" : "closed"));
  } catch { /* storage refused (private mode): the box opens every time */ }
}

if (region) {
  const first = mount(region);
  view = first;
  const touch = window.matchMedia("(pointer: coarse)").matches;
  // A text box there gets the focus, without scrolling the item away, and not on touch screens, where
  // focus would pop up the on-screen keyboard.
  activate(first, first.start, { focusText: !touch, scroll: first.startScroll });
  tickLease();
  setInterval(tickLease, 1000);
  if (first.instant) {
    history.replaceState({ item: first.itemId }, "", location.href);
    requestPrefetch();
    setInterval(requestPrefetch, RENEW_MS);
  }
}

// The page's own history entries (?item=N): going back to one shows that answer to change it.
window.addEventListener("popstate", (event) => {
  const id = event.state && event.state.item;
  if (id && view && id !== view.itemId) location.replace(labelUrl(id));
});
window.addEventListener("pagehide", releasePrefetched);
// Coming back with the browser's Back button shows the page from cache: make it usable again.
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  sending = false;
  for (const b of document.querySelectorAll("button[type=submit]")) b.disabled = false;
  requestPrefetch();
});

function submitAnswers() {
  if (view && view.form && !sending) view.form.requestSubmit();
}

function leave(url) {
  pending.then(() => window.location.assign(url()));
}

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.isComposing) return;
  const target = event.target;
  const v = view;
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    if (v && v.form) {
      event.preventDefault();
      submitAnswers();
    }
    return;
  }
  if (isTyping(target)) {
    if (event.key === "Escape") target.blur();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const onControl = target && ["BUTTON", "A", "SUMMARY"].includes(target.tagName);
  const key = event.key;
  const backLink = v ? v.backLink : document.getElementById("back-link");
  if (/^[0-9]$/.test(key)) {
    if (v && choose(v, key)) event.preventDefault();
  } else if (key === "Enter") {
    if (v && v.form && !onControl) {
      event.preventDefault();
      submitAnswers();
    }
  } else if (key === "Backspace") {
    if (backLink) {
      event.preventDefault();
      leave(() => backLink.href); // after the last save, which may change where "previous" is
    }
  } else if (key === "s" || key === "S") {
    if (v && v.skipForm && !sending) {
      event.preventDefault();
      v.skipForm.requestSubmit();
    }
  } else if (key === "r" || key === "R") {
    const q = v && v.questions[v.active];
    if (q && isRanking(q)) {
      event.preventDefault();
      resetRanking(q);
    }
  } else if (key === "ArrowDown" || key === "ArrowUp") {
    if (target && target.tagName === "INPUT") return; // arrows move between a radio group's options
    if (v && v.questions.length) {
      event.preventDefault();
      activate(v, v.active + (key === "ArrowDown" ? 1 : -1), { focusText: true });
    }
  }
});
