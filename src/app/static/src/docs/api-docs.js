// Starts Swagger UI on /docs from the app's own copy (no CDN, no inline script).
// Writes go through the app's CSRF check, so "Try it out" sends a token with each one.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var READS = ["GET", "HEAD", "OPTIONS"];

  // The token of the session the browser holds now. The page's own can be stale:
  // a development reload makes a new key, and a session can end while the page is open.
  // When it cannot be had (a 429, the server away), the write goes without one: the
  // API's answer then says what is wrong, in the response panel.
  function freshToken() {
    return fetch(root.dataset.csrfToken, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        return response.ok ? response.json() : {};
      })
      .then(
        function (data) {
          return data.csrf_token;
        },
        function () {
          return undefined;
        },
      );
  }

  // The skip link moves focus itself: Swagger UI's deep linking reads the address's
  // hash as an operation to open, and a target that is not focusable keeps none.
  var skip = document.querySelector('a[href="#swagger-ui"]');
  if (skip) {
    skip.addEventListener("click", function (event) {
      event.preventDefault();
      root.focus();
    });
  }

  window.SwaggerUIBundle({
    url: root.dataset.openapi,
    domNode: root,
    deepLinking: true,
    requestInterceptor: function (req) {
      if (READS.indexOf((req.method || "GET").toUpperCase()) !== -1) {
        return req;
      }
      return freshToken().then(function (token) {
        if (token) {
          req.headers["X-CSRF-Token"] = token;
        }
        return req;
      });
    },
  });
})();
