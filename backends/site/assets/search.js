// Client-side search of an Everlock Markdown site: fetches the fingerprinted JSON index
// (title, url, text excerpt per page) once and lists the pages containing every typed word.
// Without JavaScript the search box stays hidden. `?q=word` in the page URL searches at once.
(function () {
  "use strict";
  var box = document.querySelector("[data-search-index]");
  if (!box) { return; }
  var input = box.querySelector("input");
  var results = box.querySelector(".search-results");
  var index = null;
  box.hidden = false;
  function load() {
    if (index) { return Promise.resolve(index); }
    return fetch(box.getAttribute("data-search-index"))
      .then(function (r) { return r.json(); })
      .then(function (data) { index = data.pages || []; return index; });
  }
  function show(query) {
    var words = query.toLowerCase().split(/\s+/).filter(function (w) { return w.length > 0; });
    results.textContent = "";
    if (words.length === 0) { return; }
    load().then(function (pages) {
      if (input.value !== query) { return; }
      var hits = pages.filter(function (p) {
        var hay = (p.title + " " + p.text).toLowerCase();
        return words.every(function (w) { return hay.indexOf(w) !== -1; });
      }).slice(0, 20);
      results.textContent = "";
      hits.forEach(function (p) {
        var li = document.createElement("li");
        var a = document.createElement("a");
        a.href = p.url;
        a.textContent = p.title;
        li.appendChild(a);
        results.appendChild(li);
      });
      if (hits.length === 0) {
        var none = document.createElement("li");
        none.textContent = "No results";
        results.appendChild(none);
      }
    });
  }
  input.addEventListener("input", function () { show(input.value); });
  var q = new URLSearchParams(window.location.search).get("q");
  if (q) { input.value = q; show(q); }
})();
