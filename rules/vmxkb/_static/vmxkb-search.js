// vmxkb: Sphinx's search ignores numbers, so SDM section numbers are indexed as words
// (26.3.1.5 -> sdm_26_3_1_5). On the search page, rewrite a query typed as a dotted
// section number (optionally with a leading "§" or "SDM") before Sphinx's search reads it.
(function () {
  "use strict";
  const params = new URLSearchParams(window.location.search);
  const q = params.get("q");
  if (!q) return;
  const rewritten = q.replace(/(?:SDM\s*)?§?\s*\b(\d{1,2}(?:\.\d{1,2}){1,4})\b/gi,
                              (_, n) => "sdm_" + n.replace(/\./g, "_"));
  if (rewritten !== q) {
    params.set("q", rewritten);
    window.history.replaceState(null, "", window.location.pathname + "?" + params.toString() + window.location.hash);
  }
})();
