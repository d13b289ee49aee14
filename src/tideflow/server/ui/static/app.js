/* tideflow UI: small progressive enhancements over server-rendered pages.
   - <time data-time> shown in the browser's time zone (relative, absolute in the title)
   - [data-refresh] containers re-fetched every few seconds (live tables and run summaries)
   - the run page's log tail and level filter
   (the live event feed is feed.js; action buttons are actions.js)
   Every state-changing request sends the session's CSRF token (X-CSRF-Token, from
   <meta name="csrf-token">, present when logged in). */
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');

  // fetch options for a POST/PATCH/DELETE: the caller's, plus the CSRF token when logged in.
  function withCsrf(init) {
    init = init || {};
    var headers = Object.assign({}, init.headers || {});
    if (csrfMeta) headers["X-CSRF-Token"] = csrfMeta.getAttribute("content");
    return Object.assign({}, init, { headers: headers });
  }

  var fullFormat = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
  });
  var timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  var dayTimeFormat = new Intl.DateTimeFormat(undefined, {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit"
  });

  function relative(date, now) {
    var s = Math.round((now - date) / 1000);
    var future = s < 0;
    s = Math.abs(s);
    var text;
    if (s < 60) text = s + " s";
    else if (s < 3600) text = Math.floor(s / 60) + " min";
    else if (s < 86400) text = Math.floor(s / 3600) + " h";
    else text = Math.floor(s / 86400) + " d";
    if (s < 2) return "just now";
    return future ? "in " + text : text + " ago";
  }

  // Only what changed is written: a live page whose times read the same makes no DOM changes.
  // ``only`` (optional) limits the work to these elements' times (rows just added).
  function renderTimes(root, only) {
    var now = Date.now();
    var today = new Date().toDateString();
    var roots = only || [root || document];
    roots.forEach(function (r) {
      r.querySelectorAll("time[data-time]").forEach(function (el) {
        var date = new Date(el.getAttribute("datetime"));
        if (isNaN(date)) return;
        if (!el.title) el.title = fullFormat.format(date);
        var text = el.dataset.time === "absolute"
          ? (date.toDateString() === today ? timeFormat.format(date) : dayTimeFormat.format(date))
          : relative(date, now);
        if (el.textContent !== text) el.textContent = text;
      });
    });
  }

  function focusInside(el) {
    return el.contains(document.activeElement) && document.activeElement !== document.body;
  }

  function startRefresh(el) {
    var interval = parseInt(el.dataset.interval || "4000", 10);
    var busy = false;
    var afterFinal = 0;
    var last = null;  // the HTML shown: an unchanged answer leaves the DOM alone
    function tick() {
      var live = el.querySelector("[data-final]");
      // A finished run changes little: a few more refreshes catch late events and downstream runs.
      if (live && live.dataset.final === "true" && ++afterFinal > 8) return;
      if (busy || document.hidden || focusInside(el)) { schedule(); return; }
      busy = true;
      fetch(el.dataset.refresh, { headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html !== null && html !== last) {
            last = html;
            el.innerHTML = html;
            renderTimes(el);
            el.dispatchEvent(new CustomEvent("tideflow:refreshed", { bubbles: true }));
          }
        })
        .catch(function () { /* server briefly away: try again next tick */ })
        .finally(function () { busy = false; schedule(); });
    }
    function schedule() { setTimeout(tick, interval); }
    schedule();
  }

  var LEVELS = { 10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL" };

  function setupLogs(box) {
    var runId = box.dataset.runId;
    var levelSelect = document.getElementById("log-level");
    var follow = document.getElementById("log-follow");
    var empty = box.querySelector(".logs-empty");
    var seen = {};
    var last = null;
    box.querySelectorAll(".log").forEach(function (row) {
      seen[row.dataset.id] = true;
      last = row.dataset.ts;
    });

    function applyLevel() {
      var min = parseInt(levelSelect.value, 10);
      var shown = 0;
      box.querySelectorAll(".log").forEach(function (row) {
        var visible = parseInt(row.dataset.level, 10) >= min;
        row.hidden = !visible;
        if (visible) shown++;
      });
      empty.hidden = shown > 0;
      empty.textContent = box.querySelector(".log") ? "No logs at this level." : "No logs yet.";
    }

    function row(log) {
      var div = document.createElement("div");
      div.className = "log";
      div.dataset.level = log.level;
      div.dataset.id = log.id;
      div.dataset.ts = log.timestamp;
      var name = LEVELS[log.level] || ("LEVEL " + log.level);
      var t = document.createElement("span");
      t.className = "log-time";
      var time = document.createElement("time");
      time.setAttribute("datetime", log.timestamp);
      time.dataset.time = "absolute";
      t.appendChild(time);
      var lvl = document.createElement("span");
      lvl.className = "log-level log-level-" + name.toLowerCase();
      lvl.textContent = name;
      var msg = document.createElement("span");
      msg.className = "log-msg";
      msg.textContent = log.message;
      div.append(t, lvl, msg);
      return div;
    }

    function runFinished() {
      var live = document.querySelector("#run-summary [data-final]");
      return live && live.dataset.final === "true";
    }

    var finalPolls = 0;
    function poll() {
      if (!follow.checked) { setTimeout(poll, 1500); return; }
      var body = { flow_run_id: [runId], limit: 1000 };
      if (last) body.timestamp_after = last;
      fetch("/api/logs/filter", withCsrf({
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
      }))
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (logs) {
          var added = false;
          logs.forEach(function (log) {
            if (seen[log.id]) return;
            seen[log.id] = true;
            last = log.timestamp;
            box.insertBefore(row(log), empty);
            added = true;
          });
          if (added) {
            renderTimes(box);
            applyLevel();
            box.scrollTop = box.scrollHeight;
          }
        })
        .catch(function () {})
        .finally(function () {
          // Logs may still arrive shortly after the run ends (batched by the SDK): a few last polls.
          if (runFinished()) finalPolls++;
          if (finalPolls < 4) setTimeout(poll, 1500);
        });
    }

    levelSelect.addEventListener("change", applyLevel);
    applyLevel();
    box.scrollTop = box.scrollHeight;
    setTimeout(poll, 1000);
  }


  function apiError(body, status) {
    if (body && typeof body.detail === "string") return body.detail;
    return "the server answered " + status;
  }

  // Buttons that POST to the API and reload the page (pause/resume, enable/disable).
  function setupPostButtons() {
    document.querySelectorAll("button[data-post]").forEach(function (button) {
      button.addEventListener("click", function () {
        button.disabled = true;
        fetch(button.dataset.post, withCsrf({ method: "POST" }))
          .then(function (r) {
            if (r.ok) { window.location.reload(); return; }
            return r.json().catch(function () { return null; }).then(function (body) {
              button.disabled = false;
              window.alert(apiError(body, r.status));
            });
          })
          .catch(function () { button.disabled = false; });
      });
    });
  }

  // The deployment Run form: typed values -> POST create_flow_run -> the new run's page.
  function setupRunForm(form) {
    var formError = document.getElementById("run-form-error");

    function fieldError(name, message) {
      var el = document.getElementById("err-" + name);
      var input = document.getElementById("param-" + name) || document.getElementById(name);
      if (!el) return false;
      el.textContent = message;
      el.hidden = !message;
      if (input) input.setAttribute("aria-invalid", message ? "true" : "false");
      return true;
    }

    function clearErrors() {
      form.querySelectorAll("[data-param]").forEach(function (f) { fieldError(f.dataset.param, ""); });
      ["run-name", "run-tags", "run-start-at"].forEach(function (n) { fieldError(n, ""); });
      formError.hidden = true;
    }

    function collect() {
      var params = {};
      var ok = true;
      form.querySelectorAll("[data-kind]").forEach(function (input) {
        var name = input.name;
        var kind = input.dataset.kind;
        if (kind === "boolean") { params[name] = input.checked; return; }
        var raw = input.value.trim();
        if (raw === "") return;  // left empty: the deployment's default applies (or the API says it is required)
        if (kind === "integer" || kind === "number") {
          var n = Number(raw);
          if (isNaN(n)) { fieldError(name, "enter a number"); ok = false; return; }
          params[name] = n;
        } else if (kind === "json") {
          try { params[name] = JSON.parse(raw); }
          catch (e) { fieldError(name, "not valid JSON: " + e.message); ok = false; }
        } else {
          params[name] = raw;
        }
      });
      return ok ? params : null;
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors();
      var params = collect();
      // A deployment on a work pool also takes job variables (a JSON object; the server validates
      // the names and types against the pool's template and answers 422 naming the variable).
      var jobVarsInput = document.getElementById("param-job-variables");
      var jobVars = null;
      if (jobVarsInput && jobVarsInput.value.trim() !== "") {
        try { jobVars = JSON.parse(jobVarsInput.value); }
        catch (e) { fieldError("job-variables", "not valid JSON: " + e.message); params = null; }
        if (jobVars !== null && (typeof jobVars !== "object" || Array.isArray(jobVars))) {
          fieldError("job-variables", "job variables must be a JSON object"); params = null;
        }
      }
      if (params === null) { var bad = form.querySelector("[aria-invalid=true]"); if (bad) bad.focus(); return; }
      var runBody = { parameters: params, created_by: { type: "ui", id: "tideflow.ui", name: "web UI" } };
      if (jobVars !== null) runBody.job_variables = jobVars;
      // Optional: a run name, extra tags and a later start (local time in the browser).
      var runName = document.getElementById("run-name");
      if (runName && runName.value.trim()) runBody.name = runName.value.trim();
      var runTags = document.getElementById("run-tags");
      if (runTags && runTags.value.trim()) {
        runBody.tags = runTags.value.split(",").map(function (t) { return t.trim(); }).filter(Boolean);
      }
      var later = form.querySelector("input[name=start][value=later]");
      if (later && later.checked) {
        var at = document.getElementById("run-start-at");
        var when = at.value ? new Date(at.value) : null;
        if (!when || isNaN(when)) { fieldError("run-start-at", "choose a date and time"); at.focus(); return; }
        runBody.scheduled_time = when.toISOString();
      }
      var submit = form.querySelector("button[type=submit]");
      submit.disabled = true;
      fetch("/api/deployments/" + form.dataset.deploymentId + "/create_flow_run", withCsrf({
        method: "POST", headers: { "Content-Type": "application/json" },
        // The run says it was started from the web UI.
        body: JSON.stringify(runBody)
      }))
        .then(function (r) {
          return r.json().catch(function () { return null; }).then(function (body) {
            if (r.ok && body && body.id) { window.location.assign("/runs/" + body.id); return; }
            submit.disabled = false;
            var unplaced = [];
            var errors = (body && body.errors) || [];
            errors.forEach(function (err) {
              var loc = (err.loc || []).join(".");
              if ((loc.indexOf("job_variables") !== -1 || /job variable/.test(err.msg || "")) && fieldError("job-variables", err.msg)) return;
              var field = { name: "run-name", tags: "run-tags", scheduled_time: "run-start-at" }[(err.loc || []).slice(-1)[0]];
              if (field && fieldError(field, err.msg)) return;
              var m = /parameter '([^']+)'/.exec(err.msg || "");
              if (!(m && fieldError(m[1].split(/[.\[]/)[0], err.msg))) unplaced.push(err.msg);
            });
            if (!errors.length) unplaced.push(apiError(body, r.status));
            if (unplaced.length) { formError.textContent = unplaced.join("; "); formError.hidden = false; }
            var first = form.querySelector("[aria-invalid=true]");
            if (first) first.focus();
          });
        })
        .catch(function () { submit.disabled = false; formError.textContent = "the server could not be reached"; formError.hidden = false; });
    });
  }

  // The paused run's Resume form: typed values -> POST /api/flow_runs/{id}/resume -> reload. The
  // server checks the input against the schema the pause stored; its 422 names the field.
  function setupResumeForm(form) {
    var formError = document.getElementById("resume-form-error");

    function fieldError(name, message) {
      var el = document.getElementById("err-" + name);
      var input = document.getElementById("param-" + name);
      if (!el) return false;
      el.textContent = message;
      el.hidden = !message;
      if (input) input.setAttribute("aria-invalid", message ? "true" : "false");
      return true;
    }

    function collect() {
      var values = {};
      var ok = true;
      form.querySelectorAll("[data-kind]").forEach(function (input) {
        var name = input.name;
        var kind = input.dataset.kind;
        if (kind === "boolean") { values[name] = input.checked; return; }
        var raw = input.value.trim();
        if (raw === "") return;  // left empty: the model's default applies (or the server says it is required)
        if (kind === "integer" || kind === "number") {
          var n = Number(raw);
          if (isNaN(n)) { fieldError(name, "enter a number"); ok = false; return; }
          values[name] = n;
        } else if (kind === "json") {
          try { values[name] = JSON.parse(raw); }
          catch (e) { fieldError(name, "not valid JSON: " + e.message); ok = false; }
        } else {
          values[name] = raw;
        }
      });
      return ok ? values : null;
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      form.querySelectorAll("[data-param]").forEach(function (f) { fieldError(f.dataset.param, ""); });
      formError.hidden = true;
      var values = collect();
      if (values === null) { var bad = form.querySelector("[aria-invalid=true]"); if (bad) bad.focus(); return; }
      var body = form.dataset.waitsForInput === "true" ? { run_input: values } : {};
      var submit = form.querySelector("button[type=submit]");
      submit.disabled = true;
      fetch("/api/flow_runs/" + form.dataset.runId + "/resume", withCsrf({
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
      }))
        .then(function (r) {
          return r.json().catch(function () { return null; }).then(function (answer) {
            if (r.ok) { window.location.reload(); return; }
            submit.disabled = false;
            var unplaced = [];
            var errors = (answer && answer.errors) || [];
            errors.forEach(function (err) {
              var loc = err.loc || [];
              var at = loc.indexOf("run_input");
              var name = at >= 0 && loc.length > at + 1 ? String(loc[at + 1]) : null;
              var missing = /^'([^']+)' is a required property/.exec(err.msg || "");
              if (!name && missing) name = missing[1];
              if (!(name && fieldError(name, err.msg))) unplaced.push(err.msg);
            });
            if (!errors.length) unplaced.push(apiError(answer, r.status));
            if (unplaced.length) { formError.textContent = unplaced.join("; "); formError.hidden = false; }
            var first = form.querySelector("[aria-invalid=true]");
            if (first) first.focus();
          });
        })
        .catch(function () { submit.disabled = false; formError.textContent = "the server could not be reached"; formError.hidden = false; });
    });
  }

  // The live event feed: websocket /api/events/out; new rows are fetched as server-rendered HTML.
  function setupFeed(feed) {
    var status = document.getElementById("live-status");
    var empty = feed.querySelector(".feed-empty");
    var filter = JSON.parse(feed.dataset.streamFilter || "{}");
    var pending = [];
    var timer = null;
    var MAX_ROWS = 500;
    var retry = 1000;

    function setStatus(state, text) {
      if (!status) return;
      status.dataset.state = state;
      status.textContent = text;
    }

    function known(id) {
      return feed.querySelector('[data-event-id="' + id + '"]') || pending.indexOf(id) >= 0;
    }

    function occurred(row) {
      var t = row.querySelector("time[datetime]");
      return t ? Date.parse(t.getAttribute("datetime")) : 0;
    }

    function insert(row) {
      var when = occurred(row);
      var rows = feed.querySelectorAll(":scope > details.event");
      for (var i = 0; i < rows.length; i++) {
        if (occurred(rows[i]) <= when) { feed.insertBefore(row, rows[i]); return; }
      }
      feed.insertBefore(row, empty);
    }

    function flush() {
      timer = null;
      var ids = pending.splice(0, 100);
      if (!ids.length) return;
      var url = "/events/rows?" + ids.map(function (id) { return "id=" + encodeURIComponent(id); }).join("&");
      fetch(url).then(function (r) { return r.ok ? r.text() : ""; }).then(function (html) {
        var holder = document.createElement("div");
        holder.innerHTML = html;
        holder.querySelectorAll("details.event").forEach(function (row) {
          if (feed.querySelector('[data-event-id="' + row.dataset.eventId + '"]')) return;
          row.classList.add("event-new");
          insert(row);
        });
        renderTimes(feed);
        empty.hidden = !!feed.querySelector("details.event");
        var rows = feed.querySelectorAll(":scope > details.event");
        for (var i = MAX_ROWS; i < rows.length; i++) rows[i].remove();
      }).catch(function () {}).finally(function () { if (pending.length) schedule(); });
    }

    function schedule() { if (!timer) timer = setTimeout(flush, 150); }

    function notice(text) {
      var p = document.createElement("p");
      p.className = "feed-notice";
      p.setAttribute("role", "status");
      p.textContent = text;
      feed.insertBefore(p, feed.firstChild);
    }

    function connect(backfill) {
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var ws = new WebSocket(scheme + location.host + "/api/events/out");
      ws.onopen = function () {
        ws.send(JSON.stringify({ filter: filter, backfill_minutes: backfill }));
        setStatus("live", "Live");
        retry = 1000;
      };
      ws.onmessage = function (message) {
        var frame;
        try { frame = JSON.parse(message.data); } catch (e) { return; }
        if (frame.type === "event" && frame.event && !known(frame.event.id)) {
          pending.push(frame.event.id);
          schedule();
        } else if (frame.type === "dropped") {
          notice(frame.count + " events were skipped because the feed could not keep up; reload to see them.");
        } else if (frame.type === "error") {
          setStatus("error", "Error: " + frame.detail);
        }
      };
      ws.onclose = function () {
        setStatus("offline", "Reconnecting…");
        setTimeout(function () { connect(Math.max(1, retry / 60000)); }, retry);
        retry = Math.min(retry * 2, 15000);
      };
    }

    // A few minutes of backfill covers the gap between rendering the page and subscribing.
    connect(5);
  }

  // "Explain against an event": the server renders each criterion, matched or not.
  function setupExplain(form) {
    var result = document.getElementById("explain-result");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var id = form.querySelector("input[name=event_id]").value.trim();
      if (!id) return;
      fetch("/automations/" + form.dataset.automationId + "/explain?event_id=" + encodeURIComponent(id))
        .then(function (r) { return r.text(); })
        .then(function (html) { result.innerHTML = html; renderTimes(result); })
        .catch(function () { result.textContent = "the server could not be reached"; });
    });
  }

  // Configuration forms ([data-api-form]): fields -> JSON (data-kind json | list | int; checkboxes are
  // booleans) -> the form's data-method to its data-url -> reload; the API's reason shown otherwise.
  function formBody(form) {
    var body = {};
    form.querySelectorAll("input[name], textarea[name], select[name]").forEach(function (el) {
      if (el.name === "csrf_token") return;
      if (el.type === "checkbox") { body[el.name] = el.checked; return; }
      var kind = el.dataset.kind;
      if (kind === "json") {
        try { body[el.name] = JSON.parse(el.value); }
        catch (e) { throw new Error(el.name + " is not JSON: " + e.message); }
      } else if (kind === "int") {  // empty: null (no limit); anything else must be a whole number
        var text = el.value.trim();
        if (text === "") { body[el.name] = null; return; }
        if (!/^-?\d+$/.test(text)) throw new Error(el.name + " must be a whole number");
        body[el.name] = parseInt(text, 10);
      } else if (kind === "list") {
        body[el.name] = el.value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
      } else {
        body[el.name] = el.value;
      }
    });
    return body;
  }

  function setupApiForms() {
    document.querySelectorAll("form[data-api-form]").forEach(function (form) {
      var error = form.querySelector(".form-error");
      function show(message) { error.textContent = message; error.hidden = !message; }
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        show("");
        var body;
        try { body = formBody(form); } catch (e) { show(e.message); return; }
        var submit = form.querySelector("button[type=submit]");
        submit.disabled = true;
        fetch(form.dataset.url, withCsrf({
          method: form.dataset.method, headers: { "Content-Type": "application/json" },
          body: JSON.stringify(body)
        }))
          .then(function (r) {
            if (r.ok) { window.location.reload(); return; }
            return r.json().catch(function () { return null; }).then(function (b) {
              submit.disabled = false;
              show(apiError(b, r.status));
            });
          })
          .catch(function () { submit.disabled = false; show("the server could not be reached"); });
      });
    });
    document.querySelectorAll("button[data-delete]").forEach(function (button) {
      button.addEventListener("click", function () {
        if (!window.confirm(button.dataset.confirm || "Delete?")) return;
        button.disabled = true;
        fetch(button.dataset.delete, withCsrf({ method: "DELETE" })).then(function (r) {
          if (r.ok) { window.location.reload(); return; }
          return r.json().catch(function () { return null; }).then(function (b) {
            button.disabled = false;
            window.alert(apiError(b, r.status));
          });
        });
      });
    });
    // A POST whose JSON answer has sent/detail (a notification test): shown next to the button.
    document.querySelectorAll("button[data-post-result]").forEach(function (button) {
      var output = button.parentElement.querySelector("output");
      button.addEventListener("click", function () {
        button.disabled = true;
        output.textContent = "sending…";
        fetch(button.dataset.postResult, withCsrf({ method: "POST" }))
          .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, status: r.status, body: b }; }); })
          .then(function (res) {
            button.disabled = false;
            if (!res.ok) { output.textContent = apiError(res.body, res.status); return; }
            output.textContent = (res.body.sent ? "Sent: " : "Not sent: ") + res.body.detail;
            output.className = "small " + (res.body.sent ? "" : "field-error");
          })
          .catch(function () { button.disabled = false; output.textContent = "the server could not be reached"; });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    renderTimes(document);
    setInterval(function () { renderTimes(document); }, 1000);
    document.querySelectorAll("[data-refresh]").forEach(startRefresh);
    var logs = document.getElementById("logs");
    if (logs) setupLogs(logs);
    setupPostButtons();
    setupApiForms();
    var explainForm = document.getElementById("explain-form");
    if (explainForm) setupExplain(explainForm);
    var runForm = document.getElementById("run-form");
    if (runForm) setupRunForm(runForm);
    var resumeForm = document.getElementById("resume-form");
    if (resumeForm) setupResumeForm(resumeForm);
  });

  window.tideflow = { renderTimes: renderTimes, withCsrf: withCsrf, apiError: apiError };
})();
