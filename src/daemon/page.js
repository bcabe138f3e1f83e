// mlreg watch status page: live filter box and refresh. Served as a same-origin file
// (the Content-Security-Policy allows no inline script); the page works without it.
"use strict";
(function () {
  var box = document.getElementById("filter");
  function filter() {
    var query = box ? box.value.trim().toLowerCase() : "";
    document.querySelectorAll("article.model[data-name]").forEach(function (card) {
      var text = (card.dataset.name + " " + card.dataset.state + " " + card.dataset.label).toLowerCase();
      card.hidden = query !== "" && text.indexOf(query) < 0;
    });
  }
  if (box) {
    box.addEventListener("input", function () {
      filter();
      var url = new URL(window.location.href);
      if (box.value) { url.searchParams.set("q", box.value); } else { url.searchParams.delete("q"); }
      window.history.replaceState(null, "", url);
    });
  }
  // Says the script ran (the Content-Security-Policy let it load): the page's test checks it.
  document.documentElement.setAttribute("data-script", "ready");
  // Refresh every 15 s, but never while someone is typing in the filter box.
  window.setInterval(function () {
    if (document.activeElement !== box) { window.location.reload(); }
  }, 15000);
})();
