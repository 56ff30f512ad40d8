// Starts Swagger UI on /docs from the app's own copy (no CDN, no inline script).
// Writes go through the app's CSRF check, so "Try it out" sends the page's token.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var token = document.querySelector('meta[name="csrf-token"]').content;
  window.SwaggerUIBundle({
    url: root.dataset.openapi,
    domNode: root,
    deepLinking: true,
    requestInterceptor: function (req) {
      req.headers["X-CSRF-Token"] = token;
      return req;
    },
  });
})();
