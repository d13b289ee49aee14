/* tideflow UI: the light/dark theme. Loaded in <head> without defer so the chosen theme applies
   before the page paints; the choice is kept in localStorage (no choice: the system setting). The
   header's button switches it. */
(function () {
  "use strict";
  var KEY = "tideflow-theme";
  var root = document.documentElement;

  function stored() {
    try { return localStorage.getItem(KEY); } catch (e) { return null; }
  }
  function systemDark() {
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  }
  function current() { return root.dataset.theme || (systemDark() ? "dark" : "light"); }

  var chosen = stored();
  if (chosen === "light" || chosen === "dark") root.dataset.theme = chosen;

  function label(button) {
    var next = current() === "dark" ? "light" : "dark";
    button.setAttribute("aria-label", "Switch to the " + next + " theme");
    button.title = "Switch to the " + next + " theme";
    button.dataset.current = current();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("theme-toggle");
    if (!button) return;
    label(button);
    button.addEventListener("click", function () {
      var next = current() === "dark" ? "light" : "dark";
      root.dataset.theme = next;
      try { localStorage.setItem(KEY, next); } catch (e) { /* private mode: this page only */ }
      label(button);
    });
  });
})();
