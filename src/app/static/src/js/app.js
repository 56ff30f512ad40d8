// Shipshape example app. Loaded with `defer`, so the DOM is ready.
// Move focus to a form's error summary, or else to the first flash message, so that
// screen readers read it: a live region that is already there when the page loads
// (the flash after a form's redirect) is not announced.
(function () {
  "use strict";
  var target = document.querySelector("[data-error-summary]") || document.querySelector("[data-flash]");
  if (target) {
    target.focus();
  }
})();
