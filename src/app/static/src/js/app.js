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
  // A flash closed with its button would take the focus with it, back to the top of
  // <body>: it goes to the page's main content instead, where the next Tab continues.
  // (Bootstrap fires closed.bs.alert after removing the alert, where it bubbles nowhere.)
  document.addEventListener("close.bs.alert", function (event) {
    if (event.target.hasAttribute("data-flash") && event.target.contains(document.activeElement)) {
      document.getElementById("main").focus();
    }
  });
})();
