window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    withCredentials: true,
    persistAuthorization: true,
    requestInterceptor: function (request) {
      var match = document.cookie.match(/(?:^|; )csrf_token=([^;]*)/);
      if (match) { request.headers["X-CSRF-Token"] = decodeURIComponent(match[1]); }
      return request;
    },
  });
});
