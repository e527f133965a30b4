// Sends the browser's offset from UTC with a new announcement, so its end time means the writer's local time.
(function () {
  "use strict";
  const form = document.getElementById("add-announcement");
  if (!form) {
    return;
  }
  form.addEventListener("submit", function () {
    const field = document.getElementById("ends-at");
    const moment = field && field.value ? new Date(field.value) : new Date();
    document.getElementById("utc-offset").value = String(-moment.getTimezoneOffset());
  });
})();
