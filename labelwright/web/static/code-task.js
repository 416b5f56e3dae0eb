// Code tasks (labelwright/questions/code.py): Run sends the code in the box to POST /api/v1/items/{id}/run,
// where the server runs it with the item's tests in its sandbox, and shows the exit status, stdout and stderr
// beside the code. Nothing runs in the browser, and what comes back is shown as text, never as markup.
//
// One listener on the document, so items swapped in later (instant items) work too.

function csrfToken(task) {
  const form = task.closest("form");
  const field = (form && form.querySelector('input[name="csrf"]')) || document.querySelector('input[name="csrf"]');
  return field ? field.value : "";
}

function itemId(task) {
  const region = task.closest("[data-item-id]");
  return region ? region.dataset.itemId : null;
}

function exitText(result) {
  if (result.timed_out) return `stopped: over the time limit (${result.duration_ms} ms)`;
  if (result.killed_reason) return `stopped: ${result.killed_reason}`;
  return `${result.exit_code}${result.exit_code === 0 ? " (passed)" : " (failed)"}`;
}

async function run(task, button) {
  const id = itemId(task);
  const status = task.querySelector("[data-code-status]");
  const source = task.querySelector("[data-code-source]");
  if (!id) {
    status.textContent = "Run works on the labelling page, where the item is yours to run.";
    return;
  }
  button.disabled = true;
  status.textContent = "Running…";
  try {
    const response = await fetch(`/api/v1/items/${encodeURIComponent(id)}/run`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken(task) },
      body: JSON.stringify({ question: task.dataset.codeTask, code: source ? source.value : null }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      status.textContent = body.error ? `Could not run: ${body.error}` : `Could not run (${response.status})`;
      return;
    }
    const out = task.querySelector("[data-code-output]");
    task.querySelector("[data-code-exit]").textContent = exitText(body);
    task.querySelector("[data-code-time]").textContent =
      `${body.duration_ms} ms${body.truncated ? ", output cut short" : ""}`;
    task.querySelector("[data-code-stdout]").textContent = body.stdout || "(nothing)";
    task.querySelector("[data-code-stderr]").textContent = body.stderr || "(nothing)";
    out.hidden = false;
    status.textContent = body.passed ? "Ran: passed" : "Ran: failed";
  } catch (error) {
    status.textContent = `Could not run: ${error}`;
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-code-run]");
  if (!button) return;
  const task = button.closest("[data-code-task]");
  if (task) {
    event.preventDefault();
    run(task, button);
  }
});
