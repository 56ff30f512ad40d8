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
  // A refused form's "Back to the form" goes back in history when one of this site's
  // pages (the form's) came before, so that the browser refills the form with what was
  // typed; the link itself (the form's address) opens it blank.
  var back = document.querySelector("[data-back]");
  if (back && history.length > 1 && document.referrer) {
    if (new URL(document.referrer).origin === location.origin) {
      back.addEventListener("click", function (event) {
        event.preventDefault();
        history.back();
      });
    }
  }
  // A page that the browser kept whole for Back and Forward (its back-forward cache)
  // comes back with the token it was sent with, whose session may have ended since
  // (why its form was refused, for one): its forms get the session's token now.
  window.addEventListener("pageshow", function (event) {
    var fields = document.querySelectorAll("form input[name=csrf_token]");
    if (!event.persisted || !fields.length) {
      return;
    }
    fetch("/api/csrf-token", { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (body) {
        if (body) {
          fields.forEach(function (field) {
            field.value = body.csrf_token;
          });
        }
      })
      .catch(function () {}); // offline: the form keeps its token, and a refusal says so
  });
  // Escape closes the menu a small screen collapses the navbar into, and focus goes back
  // to its button, as a menu's does (Bootstrap's collapse has no key of its own).
  document.addEventListener("keydown", function (event) {
    var menu = document.querySelector(".navbar-collapse.show");
    if (event.key !== "Escape" || !menu || !window.bootstrap) {
      return;
    }
    var toggler = document.querySelector('[data-bs-target="#' + menu.id + '"]');
    if (!menu.contains(document.activeElement) && document.activeElement !== toggler) {
      return;
    }
    window.bootstrap.Collapse.getOrCreateInstance(menu).hide();
    if (toggler) {
      toggler.focus();
    }
  });
  document.addEventListener("close.bs.alert", function (event) {
    if (event.target.hasAttribute("data-flash") && event.target.contains(document.activeElement)) {
      document.getElementById("main").focus();
    }
  });
})();
