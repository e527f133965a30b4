// The owner's "Now: CPU … · Memory …" line on the home page: the page shows the hub's last reading at once (or
// hides the line when it has none) and this asks /hub/home/usage for a fresh one after the page has loaded.
(function () {
  "use strict";
  const line = document.getElementById("usage");
  const value = document.getElementById("usage-now");
  if (!line || !value || !line.dataset.src) {
    return;
  }
  fetch(line.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) {
      return response.ok ? response.json() : null;
    })
    .then(function (body) {
      if (body && typeof body.usage === "string" && body.usage) {
        value.textContent = body.usage;
        line.hidden = false;
      }
    })
    .catch(function () {
      // the hub or Docker away for a moment: the line keeps what the page showed
    });
})();
