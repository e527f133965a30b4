// Follows a server's start over server-sent events and moves to the server when it is ready.
(function () {
  "use strict";
  const card = document.getElementById("progress-card");
  const bar = document.getElementById("progress-bar");
  const message = document.getElementById("progress-message");
  const steps = document.getElementById("progress-log");
  const output = document.getElementById("build-output");
  const source = new EventSource(card.dataset.progressUrl);
  // The page already shows the events it was rendered with; events are numbered from 0 (SSE ids).
  const shown = Number(card.dataset.events);
  let previous = steps.lastElementChild ? steps.lastElementChild.textContent : null;

  source.onmessage = function (event) {
    const data = JSON.parse(event.data);
    bar.value = data.progress;
    message.textContent = data.message;
    const fresh = event.lastEventId === "" || Number(event.lastEventId) >= shown;
    if (fresh && data.message !== previous) {  // a build's new output repeats its step's message: one log line
      const item = document.createElement("li");
      item.textContent = data.message;
      steps.appendChild(item);
      previous = data.message;
    }
    if (fresh) {
      output.hidden = !data.output;
      output.textContent = data.output ? data.output.join("\n") : "";
    }
    if (data.ready) {
      source.close();
      window.location.href = data.url;
    } else if (data.failed) {
      source.close();
      window.location.reload();  // the page now shows why the start failed
    }
  };
  source.onerror = function () {
    if (source.readyState === EventSource.CLOSED) {
      message.textContent = card.dataset.lostContact;  // in the page's language (progress.html)
    }
  };
})();
