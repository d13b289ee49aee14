/* tideflow UI: the guided automation editor.
   The form is built from a JSON document (the automation being edited, or a draft) and the options
   the server put on the form (action kinds, deployments, automations, states). Editing the form
   rebuilds the document and asks the server for its YAML; editing the YAML asks the server for its
   JSON and refills the form. Keys the form does not manage (a trigger's id, job variables…) are
   kept as they were. Saving sends the document to the automations API; its 422 names the fields
   (trigger.threshold, actions[0].deployment_id…), shown next to them. */
(function () {
  "use strict";

  var form = document.getElementById("automation-form");
  if (!form) return;
  var guided = document.getElementById("guided");
  var yamlText = document.getElementById("automation-yaml");
  var yamlStatus = document.getElementById("yaml-status");
  var errorBox = document.getElementById("automation-error");
  var options = JSON.parse(form.dataset.options || "{}");
  var doc = JSON.parse(form.dataset.document || "{}");
  var csrf = document.querySelector('meta[name="csrf-token"]');
  var lastEdited = "form";
  var uid = 0;

  function withCsrf(init) {
    var headers = Object.assign({}, init.headers || {});
    if (csrf) headers["X-CSRF-Token"] = csrf.getAttribute("content");
    return Object.assign({}, init, { headers: headers });
  }

  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") el.textContent = v;
      else if (k === "value") el.value = v;
      else if (k === "checked") el.checked = !!v;
      else el.setAttribute(k, v === true ? "" : v);
    });
    (children || []).forEach(function (c) { if (c) el.appendChild(c); });
    return el;
  }

  function nextId(prefix) { uid += 1; return prefix + "-" + uid; }

  // A labelled control; `path` is where the API reports its errors (data-path).
  function field(label, control, path, hint) {
    var id = control.id || nextId("f");
    control.id = id;
    var wrap = h("div", { "class": "field", "data-path": path || null }, [
      control.type === "checkbox"
        ? h("label", { "class": "check", "for": id }, [control, document.createTextNode(" " + label)])
        : h("label", { "for": id, text: label }),
    ]);
    if (control.type !== "checkbox") wrap.appendChild(control);
    if (hint) wrap.appendChild(h("span", { "class": "hint", text: hint }));
    wrap.appendChild(h("span", { "class": "field-error", hidden: true }));
    return wrap;
  }

  function input(attrs) { return h("input", Object.assign({ type: "text", autocomplete: "off" }, attrs)); }

  function select(values, current, attrs) {
    var el = h("select", attrs || {});
    values.forEach(function (v) {
      var value = typeof v === "string" ? v : v.value;
      var label = typeof v === "string" ? v : v.label;
      el.appendChild(h("option", { value: value, text: label, selected: String(current) === String(value) }));
    });
    return el;
  }

  function button(text, onClick, cls) {
    var b = h("button", { type: "button", "class": cls || "button button-small", text: text });
    b.addEventListener("click", function () { onClick(); changed(); });
    return b;
  }

  // Rows of one or two inputs (a list of names, or label = value pairs), with add and remove.
  function rows(kind, title, entries, path, list) {
    var box = h("fieldset", { "class": "rows", "data-rows": kind, "data-path": path });
    box.appendChild(h("legend", { text: title }));
    var holder = h("div", { "class": "rows-list" });
    box.appendChild(holder);
    function add(a, b) {
      var row = h("div", { "class": "row" });
      var first = input({ value: a || "", list: list, "aria-label": kind === "pairs" ? title + ": label" : title, "data-part": "key" });
      row.appendChild(first);
      if (kind === "pairs") {
        row.appendChild(h("span", { "class": "row-eq", text: "=", "aria-hidden": "true" }));
        row.appendChild(input({ value: b || "", "aria-label": title + ": value", "data-part": "value" }));
      }
      var remove = h("button", { type: "button", "class": "button button-small row-remove", "aria-label": "Remove", text: "×" });
      remove.addEventListener("click", function () { row.remove(); changed(); });
      row.appendChild(remove);
      holder.appendChild(row);
      return first;
    }
    entries.forEach(function (e) { add(e[0], e[1]); });
    box.appendChild(button("Add", function () { add("", "").focus(); }));
    box.appendChild(h("span", { "class": "field-error", hidden: true }));
    return box;
  }

  function readRows(box) {
    var out = [];
    box.querySelectorAll(":scope > .rows-list > .row").forEach(function (row) {
      var key = row.querySelector("[data-part=key]").value.trim();
      var value = row.querySelector("[data-part=value]");
      if (key) out.push([key, value ? value.value : null]);
    });
    return out;
  }

  function specEntries(spec) {
    var out = [];
    Object.keys(spec || {}).forEach(function (k) {
      var v = spec[k];
      (Array.isArray(v) ? v : [v]).forEach(function (one) { out.push([k, String(one)]); });
    });
    return out;
  }

  function specFrom(pairs) {
    var spec = {};
    pairs.forEach(function (p) {
      if (!(p[0] in spec)) spec[p[0]] = p[1];
      else spec[p[0]] = [].concat(spec[p[0]], p[1]);  // the same label twice: any of the values
    });
    return spec;
  }

  function number(value) {
    if (value === "" || value === null) return null;
    var n = Number(value);
    return isNaN(n) ? value : n;  // not a number: sent as typed, the API names the field
  }

  // --- an event trigger -------------------------------------------------------------------------
  function eventTrigger(t, path) {
    var box = h("fieldset", { "class": "trigger-box", "data-trigger": "event" });
    box._original = t;
    box.appendChild(h("legend", { text: path === "trigger" ? "Event trigger" : "Inner trigger " + path.replace(/\D+/g, " ").trim() }));
    var related = t.match_related || [];
    if (!Array.isArray(related)) related = [related];
    box.appendChild(rows("names", "Expect (event names)", (t.expect || []).map(function (n) { return [n]; }), path + ".expect", "event-names"));
    box.appendChild(rows("pairs", "Match (labels of the event's resource)", specEntries(t.match), path + ".match", "label-names"));
    var relatedBox = h("div", { "class": "related-list", "data-path": path + ".match_related" });
    function addRelated(spec) {
      var i = relatedBox.children.length;
      var r = rows("pairs", "Match related resource " + (i + 1), specEntries(spec), path + ".match_related[" + i + "]", "label-names");
      r.classList.add("related-spec");
      relatedBox.appendChild(r);
    }
    related.forEach(addRelated);
    box.appendChild(relatedBox);
    box.appendChild(button("Add related resource", function () { addRelated({ "tideflow.resource.role": "deployment" }); }));
    box.appendChild(rows("names", "After (events that open the window)", (t.after || []).map(function (n) { return [n]; }), path + ".after", "event-names"));
    box.appendChild(rows("names", "For each (a separate count per value of these labels)", (t.for_each || []).map(function (n) { return [n]; }), path + ".for_each", "label-names"));
    var grid = h("div", { "class": "field-grid" });
    grid.appendChild(field("Posture", select(["Reactive", "Proactive"], t.posture || "Reactive", { "data-key": "posture" }), path + ".posture",
      "Proactive: fires when the events do NOT happen within the window"));
    grid.appendChild(field("Threshold", input({ type: "number", min: "1", value: t.threshold === undefined ? 1 : t.threshold, "data-key": "threshold" }), path + ".threshold", "events needed"));
    grid.appendChild(field("Within (seconds)", input({ type: "number", min: "0", step: "any", value: t.within === undefined ? 0 : t.within, "data-key": "within" }), path + ".within", "0: no window"));
    box.appendChild(grid);
    return box;
  }

  function readEventTrigger(box) {
    var t = Object.assign({}, box._original || {}, { type: "event" });
    var lists = box.querySelectorAll(":scope > fieldset[data-rows]");
    t.expect = readRows(lists[0]).map(function (p) { return p[0]; });
    t.match = specFrom(readRows(lists[1]));
    t.match_related = [];
    box.querySelectorAll(":scope > .related-list > .related-spec").forEach(function (r) {
      var spec = specFrom(readRows(r));
      if (Object.keys(spec).length) t.match_related.push(spec);
    });
    t.after = readRows(lists[2]).map(function (p) { return p[0]; });
    t.for_each = readRows(lists[3]).map(function (p) { return p[0]; });
    t.posture = box.querySelector("[data-key=posture]").value;
    t.threshold = number(box.querySelector("[data-key=threshold]").value);
    t.within = number(box.querySelector("[data-key=within]").value);
    return t;
  }

  // --- the trigger: event, or compound / sequence of event triggers -----------------------------
  function representable(t) {
    if (!t || typeof t !== "object") return false;
    if (t.type === "event" || t.type === undefined) return true;
    if (t.type !== "compound" && t.type !== "sequence") return false;
    return (t.triggers || []).every(function (c) { return c && (c.type === "event" || c.type === undefined); });
  }

  function triggerSection(t) {
    var section = h("section", { "class": "guided-section", "aria-label": "Trigger" }, [h("h2", { "class": "mini-head", text: "Trigger" })]);
    section._original = t;
    var kind = select([
      { value: "event", label: "Event: one kind of event (or its absence)" },
      { value: "compound", label: "Compound: several triggers" },
      { value: "sequence", label: "Sequence: triggers in order" },
    ], t.type || "event", { id: "trigger-kind", "data-key": "kind" });
    section.appendChild(field("Trigger kind", kind, "trigger.type"));
    var body = h("div", { id: "trigger-body" });
    section.appendChild(body);
    function draw(type, current) {
      body.textContent = "";
      section._type = type;
      if (type === "event") {
        body.appendChild(eventTrigger(current.type === "event" || !current.type ? current : {}, "trigger"));
        return;
      }
      var grid = h("div", { "class": "field-grid" });
      if (type === "compound") {
        grid.appendChild(field("Require", input({ value: current.require === undefined ? "all" : current.require, "data-key": "require" }), "trigger.require", "all, any, or a number"));
      }
      grid.appendChild(field("Within (seconds)", input({ type: "number", min: "0", step: "any", value: current.within === null || current.within === undefined ? "" : current.within, "data-key": "within" }), "trigger.within", "empty: no time limit"));
      body.appendChild(grid);
      var children = h("div", { "class": "children", id: "trigger-children" });
      var inner = current.triggers && current.triggers.length ? current.triggers : [{}];
      inner.forEach(function (c, i) { children.appendChild(eventTrigger(c, "trigger.triggers[" + i + "]")); });
      body.appendChild(children);
      body.appendChild(button("Add inner trigger", function () {
        children.appendChild(eventTrigger({}, "trigger.triggers[" + children.children.length + "]"));
      }));
    }
    kind.addEventListener("change", function () {
      var was = readTrigger(section);
      var next = kind.value === "event"
        ? Object.assign({}, (was.triggers || [])[0] || was, { type: "event" })
        : { type: kind.value, triggers: was.type === "event" ? [was] : was.triggers || [{}] };
      draw(kind.value, next);
    });
    draw(t.type || "event", t);
    return section;
  }

  function readTrigger(section) {
    if (section._type === "event") return readEventTrigger(section.querySelector("[data-trigger=event]"));
    var original = section._original && section._original.type === section._type ? section._original : {};
    var t = Object.assign({}, original, { type: section._type });
    delete t.expect; delete t.match; delete t.match_related; delete t.after; delete t.for_each;
    delete t.posture; delete t.threshold;
    t.triggers = [];
    section.querySelectorAll("#trigger-children > [data-trigger=event]").forEach(function (b) { t.triggers.push(readEventTrigger(b)); });
    var within = section.querySelector("#trigger-body > .field-grid [data-key=within]").value;
    t.within = within === "" ? null : number(within);
    var require = section.querySelector("[data-key=require]");
    if (require) t.require = /^\d+$/.test(require.value.trim()) ? Number(require.value) : require.value.trim();
    return t;
  }

  // --- actions ----------------------------------------------------------------------------------
  var DEPLOYMENT_ACTIONS = ["run-deployment", "pause-deployment", "resume-deployment"];

  function paramInput(name, prop, value) {
    var type = prop.type;
    if (Array.isArray(prop.enum)) {
      var sel = select([{ value: "", label: "(default)" }].concat(prop.enum.map(String)), value === undefined ? "" : value, { "data-param": name, "data-kind": "enum" });
      return sel;
    }
    if (type === "boolean") {
      return select([{ value: "", label: "(default)" }, "true", "false"], value === undefined ? "" : String(value), { "data-param": name, "data-kind": "boolean" });
    }
    var kind = (type === "integer" || type === "number" || type === "string") ? type : "json";
    var shown = value === undefined ? "" : (kind === "json" || typeof value !== "string" ? JSON.stringify(value) : value);
    if (kind === "string" && typeof value === "string") shown = value;
    return input({ value: shown, "data-param": name, "data-kind": kind, placeholder: prop["default"] !== undefined ? "default: " + JSON.stringify(prop["default"]) : "" });
  }

  function loadParameters(holder, deploymentId, current, path) {
    holder.textContent = "";
    holder._known = null;
    if (!deploymentId) return;
    holder.appendChild(h("p", { "class": "muted small", text: "Loading the deployment's parameters…" }));
    fetch("/api/deployments/" + encodeURIComponent(deploymentId), { headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        holder.textContent = "";
        if (!d) return;
        var schema = d.parameter_openapi_schema || {};
        var props = schema.properties || {};
        var names = Object.keys(props);
        holder._known = names;
        if (!names.length) { holder.appendChild(h("p", { "class": "muted small", text: "This deployment's flow takes no parameters." })); return; }
        holder.appendChild(h("p", { "class": "hint", text: "Parameters (empty: the deployment's default; templates such as {{ event.resource.name }} are allowed)" }));
        names.forEach(function (n) {
          var prop = props[n] || {};
          if (Array.isArray(prop.anyOf)) prop = Object.assign({}, prop, prop.anyOf.filter(function (o) { return o.type !== "null"; })[0] || {});
          holder.appendChild(field(n + (prop.type ? " (" + prop.type + ")" : ""), paramInput(n, prop, (current || {})[n]), path + ".parameters." + n));
        });
      })
      .catch(function () { holder.textContent = "the deployment could not be read"; });
  }

  function readParameters(holder, original) {
    var out = Object.assign({}, original || {});
    if (!holder._known) return Object.keys(out).length ? out : null;
    holder.querySelectorAll("[data-param]").forEach(function (el) {
      var name = el.dataset.param;
      var raw = el.value;
      delete out[name];
      if (raw === "") return;
      if (el.dataset.kind === "boolean") out[name] = raw === "true";
      else if (el.dataset.kind === "integer" || el.dataset.kind === "number") out[name] = number(raw);
      else if (el.dataset.kind === "json") { try { out[name] = JSON.parse(raw); } catch (e) { out[name] = raw; } }
      else out[name] = raw;
    });
    return Object.keys(out).length ? out : null;
  }

  function actionBox(a, index, list) {
    var path = list + "[" + index + "]";
    var box = h("fieldset", { "class": "action-box", "data-action": index });
    box._original = a;
    box.appendChild(h("legend", { text: "Action " + (index + 1) }));
    var kind = select(options.actions || [], a.type || "run-deployment", { "data-key": "type" });
    box.appendChild(field("Action", kind, path + ".type"));
    var body = h("div", { "class": "action-body" });
    box.appendChild(body);
    function draw(type, cur) {
      body.textContent = "";
      box._type = type;
      if (DEPLOYMENT_ACTIONS.indexOf(type) >= 0) {
        body.appendChild(field("Which deployment", select([
          { value: "selected", label: "the one chosen below" },
          { value: "inferred", label: "the deployment of the triggering event" },
        ], cur.source || "selected", { "data-key": "source" }), path + ".source"));
        var deps = [{ value: "", label: "Choose a deployment…" }].concat((options.deployments || []).map(function (d) { return { value: d.id, label: d.name }; }));
        var dep = select(deps, cur.deployment_id || "", { "data-key": "deployment_id" });
        body.appendChild(field("Deployment", dep, path + ".deployment_id"));
        if (type === "run-deployment") {
          var params = h("div", { "class": "params", "data-path": path + ".parameters" });
          body.appendChild(params);
          loadParameters(params, cur.deployment_id, cur.parameters, path);
          dep.addEventListener("change", function () { loadParameters(params, dep.value, {}, path); });
        }
      } else if (type === "change-flow-run-state") {
        body.appendChild(field("State", select(options.states || [], cur.state || "CANCELLED", { "data-key": "state" }), path + ".state"));
        body.appendChild(field("State name", input({ value: cur.name || "", "data-key": "name" }), path + ".name", "optional"));
        body.appendChild(field("Message", input({ value: cur.message || "", "data-key": "message" }), path + ".message", "optional"));
      } else if (type === "pause-automation" || type === "resume-automation") {
        body.appendChild(field("Which automation", select([
          { value: "self", label: "this automation" }, { value: "selected", label: "the one chosen below" },
        ], cur.source || "self", { "data-key": "source" }), path + ".source"));
        var autos = [{ value: "", label: "Choose an automation…" }].concat((options.automations || []).map(function (x) { return { value: x.id, label: x.name }; }));
        body.appendChild(field("Automation", select(autos, cur.automation_id || "", { "data-key": "automation_id" }), path + ".automation_id"));
      } else if (type === "call-webhook") {
        body.appendChild(field("URL", input({ type: "url", value: cur.url || "", "data-key": "url" }), path + ".url"));
        body.appendChild(field("Method", select(["POST", "PUT"], cur.method || "POST", { "data-key": "method" }), path + ".method"));
        var bodyText = cur.body === undefined || cur.body === null ? "" : (typeof cur.body === "string" ? cur.body : JSON.stringify(cur.body));
        body.appendChild(field("Body", h("textarea", { rows: "3", value: bodyText, "data-key": "body" }), path + ".body", "text or JSON; templates allowed"));
      } else {
        body.appendChild(h("p", { "class": "muted small", text: "No settings." }));
      }
    }
    kind.addEventListener("change", function () { draw(kind.value, {}); });
    draw(a.type || "run-deployment", a);
    var remove = h("button", { type: "button", "class": "button button-small", text: "Remove action" });
    remove.addEventListener("click", function () { box.remove(); renumber(); changed(); });
    box.appendChild(remove);
    return box;
  }

  function readAction(box) {
    var type = box._type;
    var a = box._original && box._original.type === type ? Object.assign({}, box._original) : {};
    a.type = type;
    box.querySelectorAll(".action-body [data-key]").forEach(function (el) {
      var key = el.dataset.key;
      var value = el.value;
      if (key === "body") {
        if (value.trim() === "") { delete a.body; return; }
        try { a.body = JSON.parse(value); } catch (e) { a.body = value; }
        return;
      }
      if (value === "" && (key === "name" || key === "message" || key === "deployment_id" || key === "automation_id")) { a[key] = null; return; }
      a[key] = value;
    });
    var params = box.querySelector(".params");
    if (params) {
      var p = readParameters(params, a.parameters);
      if (p) a.parameters = p; else delete a.parameters;
    }
    return a;
  }

  var actionsList;
  function renumber() {
    actionsList.querySelectorAll(":scope > .action-box").forEach(function (b, i) {
      b.querySelector("legend").textContent = "Action " + (i + 1);
    });
  }

  function actionsSection(actions) {
    var section = h("section", { "class": "guided-section", "aria-label": "Actions" }, [h("h2", { "class": "mini-head", text: "Actions" })]);
    actionsList = h("div", { "class": "actions-list", "data-path": "actions" });
    actions.forEach(function (a, i) { actionsList.appendChild(actionBox(a, i, "actions")); });
    section.appendChild(actionsList);
    section.appendChild(button("Add action", function () {
      actionsList.appendChild(actionBox({ type: "run-deployment" }, actionsList.children.length, "actions"));
    }));
    return section;
  }

  // --- the whole form ---------------------------------------------------------------------------
  var general, trigger;
  function build(d) {
    guided.textContent = "";
    if (!representable(d.trigger || {})) {
      guided._disabled = true;
      guided.appendChild(h("p", { "class": "note", id: "guided-off", text: "This trigger nests compound or sequence triggers: edit it in the YAML view." }));
      return;
    }
    guided._disabled = false;
    guided._original = d;
    general = h("section", { "class": "guided-section", "aria-label": "General" });
    general.appendChild(field("Name", input({ value: d.name || "", "data-key": "name", required: true }), "name"));
    general.appendChild(field("Description", input({ value: d.description || "", "data-key": "description" }), "description"));
    general.appendChild(field("Enabled", h("input", { type: "checkbox", checked: d.enabled !== false, "data-key": "enabled" }), "enabled"));
    guided.appendChild(general);
    trigger = triggerSection(d.trigger || { type: "event" });
    guided.appendChild(trigger);
    guided.appendChild(actionsSection(d.actions || []));
  }

  function read() {
    var d = Object.assign({}, guided._original || {});
    d.name = general.querySelector("[data-key=name]").value;
    d.description = general.querySelector("[data-key=description]").value;
    d.enabled = general.querySelector("[data-key=enabled]").checked;
    d.trigger = readTrigger(trigger);
    d.actions = [];
    actionsList.querySelectorAll(":scope > .action-box").forEach(function (b) { d.actions.push(readAction(b)); });
    return d;
  }

  // --- keeping the YAML view in sync -------------------------------------------------------------
  var timer = null;
  function changed() {
    if (guided._disabled) return;
    lastEdited = "form";
    clearTimeout(timer);
    timer = setTimeout(toYaml, 250);
  }

  function toYaml() {
    var d = read();
    return fetch("/automations/yaml/dump", withCsrf({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(d) }))
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) { if (text !== null && lastEdited === "form") { yamlText.value = text; yamlStatus.textContent = ""; } });
  }

  function parseYaml() {
    return fetch("/automations/yaml", withCsrf({ method: "POST", headers: { "Content-Type": "text/plain" }, body: yamlText.value }))
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, status: r.status, body: body }; }); });
  }

  yamlText.addEventListener("input", function () {
    lastEdited = "yaml";
    clearTimeout(timer);
    timer = setTimeout(function () {
      parseYaml().then(function (res) {
        if (lastEdited !== "yaml") return;
        if (!res.ok) { yamlStatus.textContent = apiError(res.body, res.status) + " (the form shows the last valid YAML)"; return; }
        yamlStatus.textContent = "";
        build(res.body);
      }).catch(function () {});
    }, 400);
  });

  guided.addEventListener("input", function (e) { if (e.target.closest(".guided-section")) changed(); });
  guided.addEventListener("change", function (e) { if (e.target.closest(".guided-section")) changed(); });

  // --- errors next to their fields ----------------------------------------------------------------
  function apiError(body, status) {
    if (body && typeof body.detail === "string") return body.detail;
    return "the server answered " + status;
  }

  function clearErrors() {
    form.querySelectorAll(".field-error").forEach(function (e) { e.hidden = true; e.textContent = ""; });
    form.querySelectorAll("[aria-invalid=true]").forEach(function (e) { e.setAttribute("aria-invalid", "false"); });
    errorBox.hidden = true;
    errorBox.textContent = "";
  }

  // "trigger.match_related[0]: label ...": the element whose data-path is the longest prefix.
  function place(path, message) {
    var best = null;
    form.querySelectorAll("[data-path]").forEach(function (el) {
      var p = el.dataset.path;
      if ((path === p || path.indexOf(p + ".") === 0 || path.indexOf(p + "[") === 0) && (!best || p.length > best.dataset.path.length)) best = el;
    });
    if (!best) return false;
    var slot = best.querySelector(":scope > .field-error") || best.appendChild(h("span", { "class": "field-error" }));
    slot.textContent = (slot.textContent ? slot.textContent + "; " : "") + message;
    slot.hidden = false;
    var control = best.querySelector("input, select, textarea");
    if (control) control.setAttribute("aria-invalid", "true");
    return true;
  }

  function showErrors(message) {
    var head = message;
    var problems = [];
    var m = /^(automation '.*' is invalid|body): (.*)$/s.exec(message);
    if (m) { head = m[1]; problems = m[2].split("; "); }
    else if (/^[\w.\[\]]+: /.test(message)) { head = "invalid"; problems = message.split("; "); }
    errorBox.textContent = problems.length ? head + ":" : message;
    if (problems.length) {
      var ul = h("ul");
      problems.forEach(function (p) {
        ul.appendChild(h("li", { text: p }));
        var i = p.indexOf(": ");
        if (i > 0) place(p.slice(0, i).replace(/^body\./, ""), p.slice(i + 2));
      });
      errorBox.appendChild(ul);
    }
    errorBox.hidden = false;
    if (lastEdited === "yaml" || guided._disabled) yamlText.setAttribute("aria-invalid", "true");
    var first = guided.querySelector("[aria-invalid=true]");
    (first && lastEdited === "form" ? first : yamlText).focus();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors();
    var submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    var source = lastEdited === "form" && !guided._disabled
      ? Promise.resolve({ ok: true, body: read() })
      : parseYaml();
    var id = form.dataset.automationId;
    source.then(function (res) {
      if (!res.ok) throw new Error(apiError(res.body, res.status));
      return fetch(id ? "/api/automations/" + id : "/api/automations/", withCsrf({
        method: id ? "PATCH" : "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(res.body)
      }));
    }).then(function (r) {
      return r.json().catch(function () { return null; }).then(function (body) {
        if (r.ok && body && body.id) { window.location.assign("/automations/" + body.id); return; }
        throw new Error(apiError(body, r.status));
      });
    }).catch(function (e) { submit.disabled = false; showErrors(e.message); });
  });

  build(doc);
})();
