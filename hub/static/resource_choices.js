// The spawn form sends the resource choices of the checked image only: its fieldset is enabled, the others'
// are disabled (a disabled fieldset sends nothing). See templates/_resource_choices.html.
(function () {
  "use strict";
  function follow(form) {
    const checked = form.querySelector('input[type="radio"][name="image"]:checked');
    form.querySelectorAll("fieldset.resource-choices").forEach(function (fieldset) {
      fieldset.disabled = !checked || fieldset.dataset.image !== checked.value;
    });
  }
  document.addEventListener("change", function (event) {
    const target = event.target;
    if (target instanceof HTMLInputElement && target.name === "image" && target.form) {
      follow(target.form);
    }
  });
  document.querySelectorAll("form").forEach(function (form) {
    if (form.querySelector("fieldset.resource-choices")) {
      follow(form);
    }
  });
})();
