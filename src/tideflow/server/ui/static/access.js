/* The Access page: create a key or a user (JSON POST with the CSRF token), revoke a key, delete a
   user; each asks first, then reloads. A new key's secret is shown once, in the page, never stored. */
(function () {
  "use strict";
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');

  function send(method, url, body) {
    var headers = { "Accept": "application/json" };
    if (csrfMeta) headers["X-CSRF-Token"] = csrfMeta.getAttribute("content");
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(url, {
      method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      if (r.ok) return r.status === 204 ? null : r.json();
      return r.json().catch(function () { return null; }).then(function (answer) {
        var detail = answer && typeof answer.detail === "string" ? answer.detail : "the server answered " + r.status;
        throw new Error(detail);
      });
    });
  }

  function formBody(form) {
    var body = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name) return;
      if (el.type === "checkbox") {
        body[el.name] = body[el.name] || [];
        if (el.checked) body[el.name].push(el.value);
      } else {
        body[el.name] = el.value;
      }
    });
    return body;
  }

  document.querySelectorAll("form[data-json-post]").forEach(function (form) {
    var error = form.querySelector(".form-error");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      error.hidden = true;
      var button = form.querySelector("button[type=submit]");
      button.disabled = true;
      send("POST", form.dataset.jsonPost, formBody(form)).then(function (answer) {
        var shown = form.dataset.result && document.getElementById(form.dataset.result);
        if (shown && answer && answer.key) {
          shown.querySelector(".key-secret").textContent = answer.key;
          shown.hidden = false;
          form.reset();
          button.disabled = false;
          return;
        }
        window.location.reload();
      }).catch(function (exc) {
        error.textContent = exc.message;
        error.hidden = false;
        button.disabled = false;
      });
    });
  });

  function confirmed(button, method, url) {
    button.addEventListener("click", function () {
      if (!window.confirm(button.dataset.confirm)) return;
      button.disabled = true;
      send(method, url).then(function () { window.location.reload(); }).catch(function (exc) {
        button.disabled = false;
        window.alert(exc.message);
      });
    });
  }
  document.querySelectorAll("button[data-confirm-post]").forEach(function (b) {
    confirmed(b, "POST", b.dataset.confirmPost);
  });
  document.querySelectorAll("button[data-confirm-delete]").forEach(function (b) {
    confirmed(b, "DELETE", b.dataset.confirmDelete);
  });
})();
