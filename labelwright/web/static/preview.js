// The live preview on /projects/new: a moment after the schema (or the sample item) changes, post the
// form to the preview endpoint and put the HTML it answers in place. The page works without this
// script: its Preview button posts the same form and the server renders the preview in the page.
const form = document.getElementById("new-project-form");
const target = document.getElementById("preview");
const DELAY_MS = 350;

if (form && target) {
  let timer = null;
  let inflight = null;
  let sent = 0;

  async function refresh() {
    const n = ++sent;
    if (inflight) inflight.abort();
    inflight = new AbortController();
    target.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(form.dataset.previewUrl, {
        method: "POST", body: new FormData(form), credentials: "same-origin", signal: inflight.signal,
      });
      if (!response.ok || n !== sent) return;
      // Server-rendered with autoescaping, like the page itself; it carries no script.
      target.innerHTML = await response.text();
      const source = document.getElementById("schema-source");
      const invalid = target.querySelector("#schema-error") !== null;
      source.setAttribute("aria-invalid", invalid ? "true" : "false");
      if (invalid) source.setAttribute("aria-describedby", "schema-error");
      else source.removeAttribute("aria-describedby");
    } catch (err) {
      if (err.name !== "AbortError") target.dataset.previewError = String(err);
    } finally {
      if (n === sent) target.removeAttribute("aria-busy");
    }
  }

  form.addEventListener("input", (event) => {
    if (!event.target.matches("textarea")) return;
    clearTimeout(timer);
    timer = setTimeout(refresh, DELAY_MS);
  });
}
