// The admin panel's "select all on this page" check box (the hub's pages allow no inline handlers).
(function () {
  "use strict";
  const all = document.getElementById("select-all");
  if (!all) {
    return;
  }
  const boxes = function () {
    return document.querySelectorAll("input[type=checkbox][name=users][form=bulk]");
  };
  all.addEventListener("change", function () {
    boxes().forEach(function (box) {
      box.checked = all.checked;
    });
  });
  document.addEventListener("change", function (event) {
    if (event.target !== all && event.target.name === "users") {
      all.checked = Array.prototype.every.call(boxes(), function (box) {
        return box.checked;
      });
    }
  });
})();
