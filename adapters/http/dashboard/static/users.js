// The Users tab: the default user's password is read only when asked for (a POST with the CSRF token).
"use strict";
(function () {
  const button = document.getElementById("show-password");
  const shown = document.getElementById("password");
  if (!button) return;
  button.addEventListener("click", async () => {
    if (!shown.hidden) { shown.hidden = true; shown.textContent = ""; button.textContent = "Show password"; return; }
    const response = await fetch(button.dataset.url, {
      method: "POST", credentials: "same-origin", headers: {"X-CSRF-Token": button.dataset.csrf}});
    const body = await response.json().catch(() => ({}));
    // A refusal has the API's shape: {"error": {"rule", "message"}}.
    shown.textContent = response.ok ? body.password
      : ((body.error && body.error.message) || "refused (" + response.status + ")");
    shown.hidden = false;
    button.textContent = "Hide password";
  });
})();
