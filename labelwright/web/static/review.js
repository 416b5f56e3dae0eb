// The review page's keyboard. Without this script the page works by its buttons; with it:
//
//   A          accept the submission as it is
//   F          fix: the answer form (pre-filled with the annotator's answers) opens; 1-9 choose as on the
//              labelling page, ↑/↓ move between questions, Enter saves the fix, Esc backs out
//   R          reject: the feedback box gets the focus; Enter sends the rejection (Shift+Enter: a new
//              line), Esc backs out (on a ranking question in the fix form, R resets the ranking instead)
//   N or J     pass over this submission to the next one
//   I          open or close the instructions
//
// Keys never fire while typing in a text box, except Enter and Esc in the feedback box and Ctrl+Enter.
import { QuestionForm, isRanking, isTyping } from "./questions.js";

const form = document.getElementById("review-form");

if (form) {
  const fixSection = document.getElementById("review-fix");
  const rejectSection = document.getElementById("review-reject");
  const feedback = document.getElementById("review-feedback");
  const buttons = {
    accept: document.getElementById("review-accept"),
    fix: document.getElementById("review-fix-button"),
    reject: document.getElementById("review-reject-button"),
  };
  const nextLink = document.getElementById("review-next");
  const instructions = document.getElementById("review-instructions");
  const fixForm = new QuestionForm(fixSection);
  let mode = form.dataset.mode || "";
  let sending = false;

  const keysHint = document.getElementById("review-reject-keys");
  if (keysHint) keysHint.hidden = false;

  function setMode(next) {
    mode = next;
    form.dataset.mode = next;
    fixSection.classList.toggle("is-open", next === "fix");
    rejectSection.classList.toggle("is-open", next === "reject");
    if (next !== "fix") fixForm.deactivate();
  }

  function openFix() {
    setMode("fix");
    fixForm.activate(fixForm.firstError(), { focusText: true });
    fixSection.scrollIntoView({ block: "nearest" });
  }

  function openReject() {
    setMode("reject");
    feedback.focus();
  }

  function backOut() {
    if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
    setMode("");
  }

  function send(button) {
    if (sending || !button) return;
    form.requestSubmit(button);
  }

  form.addEventListener("submit", (event) => {
    if (sending) {
      event.preventDefault(); // a second key press while the first decision is on its way
      return;
    }
    sending = true;
    // after the form's data is read: a disabled submitter would leave its name and value (the decision) out
    setTimeout(() => { for (const b of form.querySelectorAll("button[type=submit]")) b.disabled = true; }, 0);
  });
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return; // back from the cache: usable again
    sending = false;
    for (const b of form.querySelectorAll("button[type=submit]")) b.disabled = false;
  });
  feedback.addEventListener("focus", () => { if (mode !== "reject") setMode("reject"); });
  fixSection.addEventListener("focusin", () => { if (mode !== "fix") setMode("fix"); });
  fixSection.addEventListener("pointerdown", () => { if (mode !== "fix") setMode("fix"); });

  // Back after an error: open the step it came from.
  const touch = window.matchMedia("(pointer: coarse)").matches;
  if (mode === "fix") openFix();
  else if (mode === "reject" && !touch) openReject();

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.isComposing) return;
    const target = event.target;
    const key = event.key;
    if (target === feedback) {
      if (key === "Enter" && !event.shiftKey && !event.altKey) {
        event.preventDefault();
        if (feedback.value.trim()) send(buttons.reject);
      } else if (key === "Escape") {
        event.preventDefault();
        backOut();
      }
      return;
    }
    if (key === "Enter" && (event.ctrlKey || event.metaKey)) {
      if (mode === "fix") {
        event.preventDefault();
        send(buttons.fix);
      }
      return;
    }
    if (isTyping(target)) {
      if (key === "Escape") target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const onControl = target && ["BUTTON", "A", "SUMMARY"].includes(target.tagName);
    const lower = key.length === 1 ? key.toLowerCase() : key;
    if (/^[0-9]$/.test(key)) {
      if (mode === "fix" && fixForm.choose(key)) event.preventDefault();
    } else if (lower === "a") {
      event.preventDefault();
      send(buttons.accept);
    } else if (lower === "f") {
      event.preventDefault();
      openFix();
    } else if (lower === "r") {
      event.preventDefault();
      const q = fixForm.current;
      if (mode === "fix" && q && isRanking(q)) fixForm.resetRanking(q);
      else openReject();
    } else if (lower === "n" || lower === "j") {
      if (nextLink && !sending) {
        event.preventDefault();
        window.location.assign(nextLink.href);
      }
    } else if (lower === "i") {
      if (instructions) {
        event.preventDefault();
        instructions.open = !instructions.open;
      }
    } else if (key === "Enter") {
      if (mode === "fix" && !onControl) {
        event.preventDefault();
        send(buttons.fix);
      }
    } else if (key === "Escape") {
      if (mode) {
        event.preventDefault();
        backOut();
      }
    } else if (key === "ArrowDown" || key === "ArrowUp") {
      if (mode !== "fix" || (target && target.tagName === "INPUT")) return; // arrows move in a radio group
      event.preventDefault();
      fixForm.move(key === "ArrowDown" ? 1 : -1);
    }
  });
}
