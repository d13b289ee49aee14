/* tideflow UI: the live event feed (/events). The page comes with the newest page of events; the
   script subscribes to /api/events/out without any replay, then fetches one page from the filter
   API to cover the moment between rendering and subscribing (and any reconnect), skipping ids it
   already shows. Rows are built here from the websocket's JSON (a row's details are loaded from the
   server when it is opened), inserted in occurred order once per animation frame, and at most
   MAX_ROWS are kept. While paused, or scrolled down, new events wait behind "N new events — show". */
(function () {
  "use strict";

  var MAX_ROWS = 500;
  var PER_FRAME = 60;  // rows built in one animation frame: the page stays responsive in a burst
  var PAGE = 50;
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');

  function setupFeed(feed) {
    var status = document.getElementById("live-status");
    var empty = feed.querySelector(".feed-empty");
    var pauseButton = document.getElementById("feed-pause");
    var moreButton = document.getElementById("feed-more");
    var counter = document.getElementById("feed-count");
    var filter = JSON.parse(feed.dataset.streamFilter || "{}");
    var tones = JSON.parse(feed.dataset.tones || "{}");
    var renderTimes = window.tideflow ? window.tideflow.renderTimes : function () {};

    var rows = [];       // shown, newest first: {id, t, el}
    var seen = new Set();
    var queued = [];     // to insert at the next animation frame
    var held = [];       // waiting behind the "show" button
    var heldCount = 0;
    var received = 0;    // live events since the page opened
    var frame = 0;
    var sorted = true;   // queued is in display order (newest first)
    var paused = false;
    var retry = 1000;

    feed.querySelectorAll(":scope > details.event").forEach(function (el) {
      var time = el.querySelector("time[datetime]");
      rows.push({ id: el.dataset.eventId, t: time ? Date.parse(time.getAttribute("datetime")) : 0, el: el });
      seen.add(el.dataset.eventId);
    });

    function setStatus(state, text) {
      if (!status) return;
      status.dataset.state = state;
      status.textContent = text;
    }

    // Newest first; equal times by id so every client shows the same order.
    function before(a, b) { return a.t > b.t || (a.t === b.t && a.id > b.id); }

    function position(item) {
      var lo = 0, hi = rows.length;
      while (lo < hi) {
        var mid = (lo + hi) >> 1;
        if (before(rows[mid], item)) lo = mid + 1; else hi = mid;
      }
      return lo;
    }

    function tone(name) {
      return tones[name.slice(name.lastIndexOf(".") + 1).toLowerCase()] || "neutral";
    }

    function span(cls, text) {
      var s = document.createElement("span");
      s.className = cls;
      if (text !== undefined) s.textContent = text;
      return s;
    }

    function build(event) {
      var row = document.createElement("details");
      row.className = "event";
      row.dataset.eventId = event.id;
      row.dataset.eventName = event.event;
      row.dataset.lazy = "true";
      var summary = document.createElement("summary");
      var when = span("event-time");
      var time = document.createElement("time");
      time.setAttribute("datetime", event.occurred);
      time.dataset.time = "";
      when.appendChild(time);
      var resource = event.resource || {};
      var related = span("event-related");
      (event.related || []).slice(0, 4).forEach(function (r) {
        var role = r["tideflow.resource.role"];
        if (role === "tag") return;
        var chip = span("chip");
        chip.append(span("chip-role", role || ""), document.createTextNode(r["tideflow.resource.name"] || r["tideflow.resource.id"] || ""));
        related.appendChild(chip);
      });
      summary.append(when, span("event-name tone-" + tone(event.event), event.event),
        span("event-resource", resource["tideflow.resource.name"] || resource["tideflow.resource.id"] || ""), related);
      var body = document.createElement("div");
      body.className = "event-body";
      body.appendChild(span("muted", "Loading…"));
      row.append(summary, body);
      return row;
    }

    // A row built here gets its details (the same markup as loaded rows) when first opened.
    feed.addEventListener("toggle", function (e) {
      var row = e.target;
      if (!row.open || row.dataset.lazy !== "true") return;
      row.dataset.lazy = "loading";
      fetch("/events/rows?id=" + encodeURIComponent(row.dataset.eventId), { headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : ""; })
        .then(function (html) {
          var holder = document.createElement("div");
          holder.innerHTML = html;
          var body = holder.querySelector(".event-body");
          if (body) { row.replaceChild(body, row.querySelector(".event-body")); renderTimes(row); }
          row.dataset.lazy = "done";
        })
        .catch(function () { row.dataset.lazy = "true"; });
    }, true);

    function render() {
      frame = 0;
      if (!queued.length) return;
      if (!sorted) {
        queued.sort(function (a, b) { return before(a, b) ? -1 : 1; });
        if (queued.length > MAX_ROWS) queued.length = MAX_ROWS;  // older ones would be trimmed at once
        sorted = true;
      }
      var batch = queued.splice(0, PER_FRAME);  // newest first; the rest in the next frames
      var added = [];
      batch.forEach(function (item) {
        var at = position(item);
        if (at >= MAX_ROWS) return;
        item.el = build(item.event);
        item.event = null;
        feed.insertBefore(item.el, at < rows.length ? rows[at].el : empty);
        rows.splice(at, 0, item);
        added.push(item.el);
      });
      while (rows.length > MAX_ROWS) rows.pop().el.remove();
      // A flash marks a few new rows; in a burst hundreds flashing would repaint every frame.
      if (added.length <= 5 && !queued.length) added.forEach(function (el) { el.classList.add("event-new"); });
      if (added.length) renderTimes(feed, added);
      empty.hidden = rows.length > 0;
      if (queued.length) schedule();
    }

    function schedule() { if (!frame) frame = requestAnimationFrame(render); }

    // Read on scroll only: reading layout for every arriving event would force a layout each time.
    var away = false;
    function scrolledAway() { return away; }

    function showCount() {
      if (counter) counter.textContent = received ? received.toLocaleString("en") + " new since opened" : "";
      if (!moreButton) return;
      moreButton.hidden = heldCount === 0;
      moreButton.textContent = heldCount.toLocaleString("en") + " new event" + (heldCount === 1 ? "" : "s") + " \u2014 show";
    }

    function release() {
      if (!heldCount) return;
      queued = queued.concat(held);
      sorted = false;
      held = [];
      heldCount = 0;
      showCount();
      schedule();
    }

    function accept(event, live) {
      if (!event || !event.id || seen.has(event.id)) return;
      seen.add(event.id);
      if (live) received++;
      var item = { id: event.id, t: Date.parse(event.occurred), event: event, el: null };
      if (paused || scrolledAway()) {
        held.push(item);
        heldCount++;
        // Only the newest can ever be shown: keep the waiting list bounded.
        if (held.length > 2 * MAX_ROWS) {
          held.sort(function (a, b) { return before(a, b) ? -1 : 1; });
          held.length = MAX_ROWS;
        }
      } else {
        queued.push(item);
        sorted = false;
        schedule();
      }
      if (seen.size > 50 * MAX_ROWS) {  // forget ids no longer shown or waiting
        seen = new Set(rows.map(function (r) { return r.id; }).concat(held.map(function (h) { return h.id; }), queued.map(function (q) { return q.id; })));
      }
    }

    var countTimer = 0;
    function countSoon() { if (!countTimer) countTimer = setTimeout(function () { countTimer = 0; showCount(); }, 200); }

    // One page from the filter API: what happened while the page was rendered or the socket was down.
    function backfill() {
      var body = Object.assign({}, filter, { limit: PAGE });
      var headers = { "Content-Type": "application/json" };
      if (csrfMeta) headers["X-CSRF-Token"] = csrfMeta.getAttribute("content");
      fetch("/api/events/filter", { method: "POST", headers: headers, body: JSON.stringify(body) })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (page) { if (page && page.events) page.events.forEach(function (e) { accept(e, false); }); countSoon(); })
        .catch(function () {});
    }

    function connect() {
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var ws = new WebSocket(scheme + location.host + "/api/events/out");
      ws.onopen = function () {
        ws.send(JSON.stringify({ filter: filter, backfill_minutes: 0 }));
        setStatus("live", "Live");
        retry = 1000;
        backfill();
      };
      ws.onmessage = function (message) {
        var frameData;
        try { frameData = JSON.parse(message.data); } catch (e) { return; }
        if (frameData.type === "event") {
          accept(frameData.event, true);
          countSoon();
        } else if (frameData.type === "dropped") {
          notice(frameData.count + " events were skipped because the feed could not keep up; reload to see them.");
        } else if (frameData.type === "error") {
          setStatus("error", "Error: " + frameData.detail);
        }
      };
      ws.onclose = function () {
        setStatus("offline", "Reconnecting…");
        setTimeout(connect, retry);
        retry = Math.min(retry * 2, 15000);
      };
    }

    function notice(text) {
      var p = document.createElement("p");
      p.className = "feed-notice";
      p.setAttribute("role", "status");
      p.textContent = text;
      feed.parentNode.insertBefore(p, feed);
    }

    if (pauseButton) {
      pauseButton.addEventListener("click", function () {
        paused = !paused;
        pauseButton.setAttribute("aria-pressed", paused ? "true" : "false");
        pauseButton.textContent = paused ? "Resume" : "Pause";
        setStatus(paused ? "paused" : "live", paused ? "Paused" : "Live");
        if (!paused && !scrolledAway()) release();
      });
    }
    if (moreButton) {
      moreButton.addEventListener("click", function () {
        if (paused && pauseButton) pauseButton.click();
        window.scrollTo(0, 0);
        away = false;
        release();
      });
    }
    window.addEventListener("scroll", function () {
      away = window.scrollY > feed.offsetTop + 40;
      if (!paused && heldCount && !away) release();
    }, { passive: true });

    connect();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var feed = document.getElementById("event-feed");
    if (feed && feed.dataset.streamFilter) setupFeed(feed);
  });
})();
