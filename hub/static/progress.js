// Follows a server's start over server-sent events and moves to the server when it is ready.
(function () {
  "use strict";
  const card = document.getElementById("progress-card");
  const bar = document.getElementById("progress-bar");
  const message = document.getElementById("progress-message");
  const steps = document.getElementById("progress-log");
  const source = new EventSource(card.dataset.progressUrl);
  // The page already lists the steps it was rendered with; events are numbered from 0 (SSE ids).
  const shown = steps.children.length;

  source.onmessage = function (event) {
    const data = JSON.parse(event.data);
    bar.value = data.progress;
    message.textContent = data.message;
    if (event.lastEventId === "" || Number(event.lastEventId) >= shown) {
      const item = document.createElement("li");
      item.textContent = data.message;
      steps.appendChild(item);
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
      message.textContent = "Lost contact with the hub. Reload this page to continue following the start.";
    }
  };
})();
