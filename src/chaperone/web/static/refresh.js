// Reloads the page every data-refresh seconds, unless a form on it is being filled in:
// while a field has the focus or holds an edit not yet sent, the reload waits.
(function () {
  "use strict";
  var seconds = Number(document.body.getAttribute("data-refresh"));
  if (!seconds || seconds < 1) {
    return;
  }
  var edited = false;
  document.addEventListener("input", function () { edited = true; });
  document.addEventListener("submit", function () { edited = true; });
  function busy() {
    var active = document.activeElement;
    var typing = active && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
    return edited || typing;
  }
  function tick() {
    if (busy()) {
      window.setTimeout(tick, seconds * 1000);
      return;
    }
    window.location.reload();
  }
  window.setTimeout(tick, seconds * 1000);
})();
