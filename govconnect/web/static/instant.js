// Instant directory results: progressive enhancement over the plain GET form.
(function () {
  var input = document.getElementById("q"), box = document.getElementById("results-box");
  if (!input || !box || !window.fetch) return;
  var timer = null, ctrl = null;
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var q = input.value.trim();
      if (ctrl && ctrl.abort) ctrl.abort();
      ctrl = window.AbortController ? new AbortController() : null;
      fetch("/m/staff/search.frag?q=" + encodeURIComponent(q), {credentials: "same-origin", signal: ctrl && ctrl.signal})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) return;
          box.innerHTML = html;
          if (history.replaceState) history.replaceState(null, "", "/m/staff/?q=" + encodeURIComponent(q));
        })
        .catch(function () {});
    }, 150);
  });
})();
