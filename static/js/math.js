// Paper pages: typeset the LaTeX of titles and abstracts with the vendored KaTeX
// (static/vendor/katex). Without JavaScript the source stays readable as it is.
(function () {
  "use strict";
  if (typeof window.renderMathInElement !== "function") return;
  document.querySelectorAll(".math").forEach(function (element) {
    window.renderMathInElement(element, {
      delimiters: [
        { left: "$$", right: "$$", display: true },
        { left: "\\(", right: "\\)", display: false },
        { left: "$", right: "$", display: false }
      ],
      throwOnError: false
    });
    element.classList.add("math-rendered");
  });
})();
