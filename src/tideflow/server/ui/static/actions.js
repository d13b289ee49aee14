/* tideflow UI actions: buttons and forms that change something through the API with the browser
   session (its CSRF token in X-CSRF-Token): cancel, retry or delete a run, force a run's state with a
   reason, delete a deployment or an automation, pause or resume a schedule. A button with
   data-confirm asks first in a modal <dialog> built here (the Content-Security-Policy allows no
   inline script). Clicks are delegated from the document, so buttons inside live-refreshed parts
   keep working after a refresh. */
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');

  function request(method, url, body) {
    var headers = { "Accept": "application/json" };
    if (csrfMeta) headers["X-CSRF-Token"] = csrfMeta.getAttribute("content");
    var init = { method: method, headers: headers };
    if (body !== undefined && body !== null) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (r) {
      return r.json().catch(function () { return null; }).then(function (data) {
        if (!r.ok) {
          var why = data && typeof data.detail === "string" ? data.detail : "the server answered " + r.status;
          throw new Error(why);
        }
        // A state proposal the rules did not accept (WAIT/ABORT) comes back as 200 with a reason.
        if (data && data.status && data.status !== "ACCEPT") throw new Error(data.reason || "the server did not accept it");
        return data;
      });
    });
  }

  // A retry or a forced Scheduled state starts now.
  function prepare(body) {
    if (body && body.state && body.state.type === "SCHEDULED") {
      body.state.details = Object.assign({}, body.state.details || {}, { scheduled_time: new Date().toISOString() });
    }
    return body;
  }

  var status = null;
  function showError(message) {
    if (!status) {
      status = document.createElement("p");
      status.className = "form-error action-error";
      status.id = "action-error";
      status.setAttribute("role", "alert");
      var main = document.getElementById("main");
      main.insertBefore(status, main.firstChild);
    }
    status.textContent = message;
    status.hidden = !message;
  }

  var dialog = null;
  function confirmDialog(text, label) {
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.className = "confirm-dialog";
      dialog.setAttribute("aria-labelledby", "confirm-text");
      var p = document.createElement("p");
      p.id = "confirm-text";
      var row = document.createElement("div");
      row.className = "dialog-actions";
      var no = document.createElement("button");
      no.type = "button";
      no.className = "button";
      no.value = "no";
      no.textContent = "Keep it";
      var yes = document.createElement("button");
      yes.type = "button";
      yes.className = "button button-danger";
      yes.value = "yes";
      row.append(no, yes);
      dialog.append(p, row);
      document.body.appendChild(dialog);
    }
    dialog.querySelector("#confirm-text").textContent = text;
    dialog.querySelector("button[value=yes]").textContent = label || "Confirm";
    return new Promise(function (resolve) {
      function done(answer) {
        dialog.removeEventListener("click", onClick);
        dialog.removeEventListener("cancel", onCancel);
        if (dialog.open) dialog.close();
        resolve(answer);
      }
      function onClick(event) {
        var b = event.target.closest("button");
        if (b) done(b.value === "yes");
      }
      function onCancel(event) { event.preventDefault(); done(false); }  // Escape
      dialog.addEventListener("click", onClick);
      dialog.addEventListener("cancel", onCancel);
      dialog.showModal();
      dialog.querySelector("button[value=no]").focus();
    });
  }

  function act(button) {
    var body = button.dataset.body ? prepare(JSON.parse(button.dataset.body)) : null;
    var ask = button.dataset.confirm ? confirmDialog(button.dataset.confirm, button.dataset.confirmButton) : Promise.resolve(true);
    ask.then(function (yes) {
      if (!yes) { button.focus(); return; }
      button.disabled = true;
      showError("");
      return request(button.dataset.action, button.dataset.url, body).then(function () {
        if (button.dataset.then) window.location.assign(button.dataset.then);
        else window.location.reload();
      });
    }).catch(function (e) {
      button.disabled = false;
      showError(e.message || "the server could not be reached");
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-action]");
    if (!button || button.disabled) return;
    event.preventDefault();
    act(button);
  });

  function setupStateForm(form) {
    var error = document.getElementById("state-error");
    var reason = document.getElementById("state-reason");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = reason.value.trim();
      error.hidden = true;
      reason.setAttribute("aria-invalid", "false");
      if (!text) {
        error.textContent = "Give a reason: it is kept in the run's state history.";
        error.hidden = false;
        reason.setAttribute("aria-invalid", "true");
        reason.focus();
        return;
      }
      var type = document.getElementById("state-type").value;
      var body = prepare({ state: { type: type, message: text + " (forced from the web UI" + form.dataset.by + ")" }, force: true });
      var submit = form.querySelector("button[type=submit]");
      submit.disabled = true;
      request("POST", form.dataset.url, body)
        .then(function () { window.location.reload(); })
        .catch(function (e) { submit.disabled = false; error.textContent = e.message; error.hidden = false; });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("state-form");
    if (form) setupStateForm(form);
  });
})();
