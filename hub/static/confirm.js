// Asks before sending a form that has a data-confirm question (the hub's pages allow no inline handlers).
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    const question = event.target.dataset ? event.target.dataset.confirm : undefined;
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
})();
