// The question form's keyboard, for the pages that show one beside other work: the review page's fix
// form and the owner's gold form. It works like the labelling page (label.js):
//
//   1-9      choose an option of the active question (then the next question becomes active);
//            on a ranking, pressing candidate numbers best first builds the ranking
//   ↑ / ↓    previous / next question (the page calls move())
//
// The page decides when its keys reach the form; this module only acts on the form it is given.

export function isTyping(el) {
  if (!el || !el.tagName) return false;
  if (el.isContentEditable) return true;
  if (el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
  if (el.tagName === "INPUT") return !["radio", "checkbox", "button", "submit", "reset", "hidden"].includes(el.type);
  return false;
}

// A question whose partial has a ranking order (data-ranking-order): number keys place candidates. Which
// keys a question takes follows from its markup (data-key, data-text-answer, data-ranking-order), never
// from its type's name, so a new question type needs no script of its own.
export function isRanking(q) {
  return q.querySelector("[data-ranking-order]") !== null;
}

export function rankSelects(q) {
  return Array.from(q.querySelectorAll("select[data-candidate]"));
}

export function showRanking(q) {
  const list = q.querySelector("[data-ranking-order]");
  if (!list) return;
  const ranked = rankSelects(q).filter((s) => s.value).sort((a, b) => Number(a.value) - Number(b.value));
  list.replaceChildren(...ranked.map((s) => {
    const li = document.createElement("li");
    li.textContent = s.dataset.title; // text, never markup
    return li;
  }));
  list.hidden = ranked.length === 0;
}

// Number `key` on a ranking: that candidate takes the next free place (unless it has one). Returns null when
// no candidate has that key, else whether every candidate is now placed.
export function placeRank(q, key) {
  const selects = rankSelects(q);
  const select = selects.find((s) => s.dataset.key === key);
  if (!select) return null;
  if (!select.value) {
    const taken = new Set(selects.map((s) => s.value).filter(Boolean));
    let place = 1;
    while (taken.has(String(place))) place += 1;
    select.value = String(place);
    showRanking(q);
  }
  return selects.every((s) => s.value);
}

export function resetRanking(q) {
  for (const s of rankSelects(q)) s.value = "";
  showRanking(q);
}

export class QuestionForm {
  constructor(root) {
    this.root = root;
    this.questions = root ? Array.from(root.querySelectorAll(".question")) : [];
    this.active = -1;
    this.questions.forEach((q, i) => {
      q.addEventListener("focusin", () => { if (this.active !== i) this.activate(i, { scroll: false }); });
      q.addEventListener("pointerdown", () => { if (this.active !== i) this.activate(i, { scroll: false }); });
      if (isRanking(q)) {
        q.addEventListener("change", () => showRanking(q));
        const reset = q.querySelector("[data-ranking-reset]");
        if (reset) reset.addEventListener("click", () => this.resetRanking(q));
        showRanking(q);
      }
    });
  }

  get current() {
    return this.questions[this.active] || null;
  }

  firstError() {
    const i = this.questions.findIndex((q) => q.classList.contains("has-error"));
    return i >= 0 ? i : 0;
  }

  textBox(q) {
    return q.querySelector("[data-text-answer]");
  }

  activate(index, { focusText = false, scroll = true } = {}) {
    if (index < 0 || index >= this.questions.length) return;
    this.active = index;
    this.questions.forEach((q, i) => q.classList.toggle("is-active", i === index));
    const q = this.questions[index];
    const box = this.textBox(q);
    if (focusText && box) box.focus({ preventScroll: !scroll });
    else if (scroll) q.scrollIntoView({ block: "nearest" });
  }

  deactivate() {
    this.active = -1;
    this.questions.forEach((q) => q.classList.remove("is-active"));
  }

  move(delta) {
    this.activate(Math.max(0, Math.min(this.questions.length - 1, this.active + delta)), { focusText: true });
  }

  nextQuestion() {
    if (this.active < this.questions.length - 1) this.activate(this.active + 1, { focusText: true });
  }

  resetRanking(q) {
    resetRanking(q);
  }

  rankNext(q, key) {
    const placed = placeRank(q, key);
    if (placed === null) return false;
    if (placed) this.nextQuestion();
    return true;
  }

  // Press number `key` on the active question; true when it chose something.
  choose(key) {
    const q = this.current;
    if (!q) return false;
    if (isRanking(q)) return this.rankNext(q, key);
    const input = q.querySelector(`input[data-key="${key}"]`);
    if (!input) return false;
    input.checked = input.type === "checkbox" ? !input.checked : true; // several may apply: stay there
    input.dispatchEvent(new Event("change", { bubbles: true }));
    if (input.type === "radio") {
      const rationale = q.querySelector("textarea[data-required-rationale]");
      if (rationale) rationale.focus();
      else this.nextQuestion();
    }
    return true;
  }
}
