// yes_no (tests/questions/yes_no.py): a live count of the comment's characters, from the type's own script
// (QuestionType.assets). Delegated from the document, so items swapped in without a page load count too.
document.addEventListener("input", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLTextAreaElement) || !box.closest('fieldset[data-qtype="yes_no"]')) return;
  const count = box.closest(".rationale")?.querySelector("[data-yes-no-count]");
  if (count) count.textContent = `${box.value.trim().length} characters`;
});
