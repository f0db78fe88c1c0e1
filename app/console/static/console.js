// Progressive enhancement only: every page works without this file.
// Client-side validation speaks the server's words: a field's data-msg-* attributes hold the same
// translated messages the server answers with (app/console/forms.py).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("input[data-msg-required], select[data-msg-required], textarea[data-msg-required], input[data-msg-pattern], textarea[data-msg-maxlength]").forEach(function (field) {
    field.addEventListener("invalid", function () {
      var v = field.validity;
      var msg = (v.valueMissing && field.dataset.msgRequired) || (v.patternMismatch && field.dataset.msgPattern) ||
        ((v.tooLong || v.tooShort) && field.dataset.msgMaxlength) || ((v.rangeUnderflow || v.rangeOverflow) && field.dataset.msgRange) || "";
      field.setCustomValidity(msg);
    });
    field.addEventListener("input", function () { field.setCustomValidity(""); });
    field.addEventListener("change", function () { field.setCustomValidity(""); });
  });
});
