// The owner's item page: marking gold by keyboard while walking through the items in doubt.
//
//   1-9      choose an option of the active gold question (as on the labelling page)
//   ↑ / ↓    previous / next question
//   G        mark as gold (save the gold answers)
//   J / K    next / previous item in doubt
//
// Keys never fire while typing in a text box or a select, except Ctrl+Enter, which saves the gold answers.
import { QuestionForm, isTyping } from "./questions.js";

const form = document.getElementById("gold-form");
const save = document.getElementById("gold-save");
const links = { j: document.getElementById("doubt-next"), k: document.getElementById("doubt-previous") };
const questions = new QuestionForm(form);
let sending = false;

if (form) {
  form.addEventListener("submit", (event) => {
    if (sending) {
      event.preventDefault();
      return;
    }
    sending = true;
    // after the form's data is read: a disabled submitter would leave its name and value (the decision) out
    setTimeout(() => { for (const b of form.querySelectorAll("button[type=submit]")) b.disabled = true; }, 0);
  });
  const touch = window.matchMedia("(pointer: coarse)").matches;
  if (questions.questions.length) questions.activate(questions.firstError(), { focusText: false, scroll: false });
  if (!touch && form.querySelector(".has-error")) questions.activate(questions.firstError(), { focusText: true });
}
window.addEventListener("pageshow", (event) => {
  if (!event.persisted || !form) return;
  sending = false;
  for (const b of form.querySelectorAll("button[type=submit]")) b.disabled = false;
});

function markGold() {
  if (form && save && !sending) form.requestSubmit(save);
}

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.isComposing) return;
  const target = event.target;
  const key = event.key;
  if (key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    markGold();
    return;
  }
  if (isTyping(target)) {
    if (key === "Escape") target.blur();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const lower = key.length === 1 ? key.toLowerCase() : key;
  if (/^[0-9]$/.test(key)) {
    if (questions.choose(key)) event.preventDefault();
  } else if (lower === "g") {
    event.preventDefault();
    markGold();
  } else if (lower === "j" || lower === "k") {
    const link = links[lower];
    if (link && !sending) {
      event.preventDefault();
      window.location.assign(link.href);
    }
  } else if (key === "ArrowDown" || key === "ArrowUp") {
    if (target && target.tagName === "INPUT") return; // arrows move between a radio group's options
    if (questions.questions.length) {
      event.preventDefault();
      questions.move(key === "ArrowDown" ? 1 : -1);
    }
  }
});
