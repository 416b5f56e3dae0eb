// Active time on a page, in milliseconds: what the labelling form sends as `active_ms`.
//
// Time counts only while all three hold:
//   1. the page is visible (document.visibilityState === "visible"): another tab or a minimised
//      window stops the count;
//   2. the window has focus (document.hasFocus()): working in another application stops it;
//   3. the person did something recently: after IDLE_MS (60 s) with no key, pointer, wheel, scroll or
//      touch input the count pauses, and of an idle stretch only the first 60 s are counted.
// The total is kept by settling the interval since the last check at every state change and every
// input, never by adding up timer ticks, so a throttled background tab cannot inflate it.

export const IDLE_MS = 60_000;

const INPUT_EVENTS = ["keydown", "pointerdown", "pointermove", "wheel", "scroll", "touchstart", "input"];
const STATE_EVENTS = ["focus", "blur", "pageshow", "pagehide"];

export class ActiveTimer {
  constructor({ idleMs = IDLE_MS, now = () => performance.now(), doc = document, win = window } = {}) {
    this.idleMs = idleMs;
    this.now = now;
    this.doc = doc;
    this.win = win;
    this.total = 0;
    this.last = now();
    this.lastInput = this.last; // opening the page counts as activity
    this.counting = this.isAttended();
  }

  isAttended() {
    return this.doc.visibilityState === "visible" && this.doc.hasFocus();
  }

  // Credit the time since the last settle if the page was attended, then re-read the state.
  settle() {
    const now = this.now();
    if (this.counting) {
      const end = Math.min(now, this.lastInput + this.idleMs);
      if (end > this.last) this.total += end - this.last;
    }
    this.last = now;
    this.counting = this.isAttended();
  }

  activity() {
    this.settle();
    this.lastInput = this.last;
  }

  start() {
    const onInput = (event) => {
      // pointermove fires constantly; once a second is plenty to know someone is there.
      if (event.type === "pointermove" && this.now() - this.lastInput < 1000) return;
      this.activity();
    };
    for (const type of INPUT_EVENTS) this.doc.addEventListener(type, onInput, { capture: true, passive: true });
    for (const type of STATE_EVENTS) this.win.addEventListener(type, () => this.settle());
    this.doc.addEventListener("visibilitychange", () => this.settle());
    return this;
  }

  // Start counting again from ``ms`` (another item is on screen; ``ms``: what it had counted before, if it
  // was shown already). Seeing the new item counts as activity.
  reset(ms = 0) {
    this.settle();
    this.total = ms;
    this.lastInput = this.last;
  }

  // Milliseconds of active time so far.
  get ms() {
    this.settle();
    return Math.round(this.total);
  }
}
