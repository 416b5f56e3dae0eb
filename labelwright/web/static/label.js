// The labelling page's keyboard and its active-time field.
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
// A question with the assistant's answer pre-selected (class has-suggestion) shows it marked as a suggestion
// until the person chooses there (a click or a key, even on the suggested option): then the mark goes away
// and the choice is theirs. Enter with the suggestion still selected submits it as is.
import { ActiveTimer } from "./activity.js";

const form = document.getElementById("answer-form");
const skipForm = document.getElementById("skip-form");
const backLink = document.getElementById("back-link");
const activeField = document.getElementById("active-ms");
const questions = form ? Array.from(form.querySelectorAll(".question")) : [];
const timer = new ActiveTimer().start();
let active = -1;
let sending = false;

function isTyping(el) {
  if (!el || !el.tagName) return false;
  if (el.isContentEditable) return true;
  if (el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
  if (el.tagName === "INPUT") return !["radio", "checkbox", "button", "submit", "reset", "hidden"].includes(el.type);
  return false;
}

function textBox(q) {
  return q.dataset.qtype === "text" ? q.querySelector("textarea, input[type=text]") : null;
}

function activate(index, { focusText = false, scroll = true } = {}) {
  if (index < 0 || index >= questions.length) return;
  active = index;
  questions.forEach((q, i) => q.classList.toggle("is-active", i === index));
  const q = questions[index];
  const box = textBox(q);
  if (focusText && box) {
    box.focus({ preventScroll: !scroll });
  } else if (scroll) {
    q.scrollIntoView({ block: "nearest" });
  }
}

function nextQuestion() {
  if (active < questions.length - 1) activate(active + 1, { focusText: true });
}

// ---- ranking ----------------------------------------------------------------------------------

function rankSelects(q) {
  return Array.from(q.querySelectorAll("select[data-candidate]"));
}

function showRanking(q) {
  const list = q.querySelector("[data-ranking-order]");
  const ranked = rankSelects(q).filter((s) => s.value).sort((a, b) => Number(a.value) - Number(b.value));
  list.replaceChildren(...ranked.map((s) => {
    const li = document.createElement("li");
    li.textContent = s.dataset.title; // text, never markup
    return li;
  }));
  list.hidden = ranked.length === 0;
}

function rankNext(q, key) {
  const selects = rankSelects(q);
  const select = selects.find((s) => s.dataset.key === key);
  if (!select) return false;
  if (!select.value) {
    const taken = new Set(selects.map((s) => s.value).filter(Boolean));
    let place = 1;
    while (taken.has(String(place))) place += 1;
    select.value = String(place);
    showRanking(q);
  }
  if (selects.every((s) => s.value)) nextQuestion();
  return true;
}

function resetRanking(q) {
  for (const s of rankSelects(q)) s.value = "";
  showRanking(q);
}

// ---- choosing ---------------------------------------------------------------------------------

function choose(key) {
  const q = questions[active];
  if (!q) return false;
  if (q.dataset.qtype === "ranking") return rankNext(q, key);
  const input = q.querySelector(`input[data-key="${key}"]`);
  if (!input) return false;
  if (input.type === "checkbox") {
    input.checked = !input.checked; // several may apply: stay on this question
  } else {
    input.checked = true;
  }
  input.dispatchEvent(new Event("change", { bubbles: true }));
  if (input.type === "radio") {
    const rationale = q.querySelector("textarea[data-required-rationale]");
    if (rationale) rationale.focus();
    else nextQuestion();
  }
  return true;
}

function submitAnswers() {
  if (form && !sending) form.requestSubmit();
}

// ---- wiring -----------------------------------------------------------------------------------

if (form) {
  questions.forEach((q, i) => {
    if (q.classList.contains("has-suggestion")) {
      const chosen = () => q.classList.remove("has-suggestion");
      q.addEventListener("change", chosen);
      q.addEventListener("click", (event) => { if (event.target.tagName === "INPUT") chosen(); });
    }
    q.addEventListener("focusin", () => { if (active !== i) activate(i, { scroll: false }); });
    q.addEventListener("pointerdown", () => { if (active !== i) activate(i, { scroll: false }); });
    if (q.dataset.qtype === "ranking") {
      q.addEventListener("change", () => showRanking(q));
      q.querySelector("[data-ranking-reset]").addEventListener("click", () => resetRanking(q));
      showRanking(q);
    }
  });
  // Start on the first question with an error, else the first. A text box there gets the focus, without
  // scrolling the item away, and not on touch screens, where focus would pop up the on-screen keyboard.
  const firstError = questions.findIndex((q) => q.classList.contains("has-error"));
  const touch = window.matchMedia("(pointer: coarse)").matches;
  activate(firstError >= 0 ? firstError : 0, { focusText: !touch, scroll: firstError >= 0 });

  form.addEventListener("submit", (event) => {
    if (sending) {
      event.preventDefault(); // a second Enter while the first submit is on its way
      return;
    }
    sending = true;
    if (activeField) activeField.value = String(timer.ms);
    for (const b of document.querySelectorAll("button[type=submit]")) b.disabled = true;
  });
}
if (skipForm) {
  skipForm.addEventListener("submit", (event) => {
    if (sending) event.preventDefault();
    sending = true;
  });
}
// Coming back with the browser's Back button shows the page from cache: make it usable again.
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  sending = false;
  for (const b of document.querySelectorAll("button[type=submit]")) b.disabled = false;
});

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.isComposing) return;
  const target = event.target;
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    if (form) {
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
  if (/^[0-9]$/.test(key)) {
    if (choose(key)) event.preventDefault();
  } else if (key === "Enter") {
    if (form && !onControl) {
      event.preventDefault();
      submitAnswers();
    }
  } else if (key === "Backspace") {
    if (backLink) {
      event.preventDefault();
      window.location.assign(backLink.href);
    }
  } else if (key === "s" || key === "S") {
    if (skipForm && !sending) {
      event.preventDefault();
      skipForm.requestSubmit();
    }
  } else if (key === "r" || key === "R") {
    const q = questions[active];
    if (q && q.dataset.qtype === "ranking") {
      event.preventDefault();
      resetRanking(q);
    }
  } else if (key === "ArrowDown" || key === "ArrowUp") {
    if (target && target.tagName === "INPUT") return; // arrows move between a radio group's options
    if (questions.length) {
      event.preventDefault();
      activate(active + (key === "ArrowDown" ? 1 : -1), { focusText: true });
    }
  }
});
