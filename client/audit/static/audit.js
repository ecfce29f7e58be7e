// swarmfuse audit page: filters apply on change, hashes copy in one click, verification runs in place.
"use strict";

document.documentElement.classList.add("js");

function applyFilters(form) {
  const query = new URLSearchParams();
  for (const select of form.querySelectorAll("select")) {
    if (select.value) query.set(select.name, select.value);
  }
  const search = query.toString();
  window.location.assign(search ? `/?${search}` : "/");
}

async function copyHash(button) {
  try {
    await navigator.clipboard.writeText(button.dataset.copy);
    button.textContent = "copied";
  } catch {
    window.getSelection().selectAllChildren(button.previousElementSibling);
    button.textContent = "selected";
  }
  button.classList.add("done");
  setTimeout(() => { button.textContent = "copy"; button.classList.remove("done"); }, 1500);
}

async function runVerification(button) {
  const status = document.getElementById("verification-status");
  button.disabled = true;
  status.className = "status running";
  status.textContent = "Running verification…";
  try {
    const response = await fetch("/api/verify", { method: "POST", headers: { Accept: "application/json", "X-Swarmfuse-Audit": "verify" } });
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      throw new Error(problem.detail || `${response.status} ${response.statusText}`);
    }
    const partial = await fetch("/partials/verification");
    if (!partial.ok) throw new Error(`${partial.status} ${partial.statusText}`);
    document.getElementById("verification-result").innerHTML = await partial.text();
    status.className = "status";
    status.textContent = "";
  } catch (error) {
    status.className = "status error";
    status.textContent = `Verification could not run: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const select of document.querySelectorAll("form.filters select")) {
    select.addEventListener("change", () => applyFilters(select.form));
  }
  document.addEventListener("click", (event) => {
    const copy = event.target.closest("button.copy");
    if (copy) copyHash(copy);
  });
  const verify = document.getElementById("run-verification");
  if (verify) verify.addEventListener("click", () => runVerification(verify));
});
