// Shipshape example app. Loaded with `defer`, so the DOM is ready.
// Move focus to a form's error summary so screen readers announce it.
(function () {
  "use strict";
  var summary = document.querySelector("[data-error-summary]");
  if (summary) {
    summary.focus();
  }
})();
