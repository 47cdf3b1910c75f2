// Signup and preferences pages: live preview, suggested-topic chips, the browser's
// time zone, and the weekday only for weekly mail. Everything here is an
// enhancement: without JavaScript the forms post and the server renders the same.
(function () {
  "use strict";

  var form = document.querySelector("form[data-preferences], #signup-form");
  if (!form) return;
  var topics = form.querySelector("textarea[name=topics]");
  var authors = form.querySelector("textarea[name=authors]");

  // --- Time zone from the browser (only where the server left the default) ---
  var tz = form.querySelector("[name=timezone]");
  if (tz && tz.dataset.autofill === "1") {
    try {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      // A <select>: only a zone it lists (an unknown one would leave it blank).
      if (zone && (!tz.options || tz.querySelector('option[value="' + zone.replace(/"/g, "") + '"]'))) tz.value = zone;
    } catch (e) { /* keep the server's default */ }
  }

  // --- Weekday only matters for weekly mail ---
  var weekdayField = document.getElementById("weekday-field");
  function syncWeekday() {
    var checked = form.querySelector("input[name=frequency]:checked");
    if (weekdayField) weekdayField.hidden = !!checked && checked.value === "daily";
  }
  form.querySelectorAll("input[name=frequency]").forEach(function (radio) {
    radio.addEventListener("change", syncWeekday);
  });
  syncWeekday();

  // --- Suggested topics: click to add or remove a line ---
  function topicLines() {
    return topics.value.split(/\r?\n/).map(function (l) { return l.trim(); }).filter(Boolean);
  }
  var chips = document.getElementById("suggested-topics");
  function syncChips() {
    if (!chips) return;
    var current = topicLines().map(function (l) { return l.toLowerCase(); });
    chips.querySelectorAll(".chip").forEach(function (chip) {
      chip.setAttribute("aria-pressed", current.indexOf(chip.dataset.topic) >= 0 ? "true" : "false");
    });
  }
  if (chips && topics) {
    chips.hidden = false;
    chips.addEventListener("click", function (event) {
      var chip = event.target.closest(".chip");
      if (!chip) return;
      var lines = topicLines();
      var wanted = chip.dataset.topic;
      var at = lines.map(function (l) { return l.toLowerCase(); }).indexOf(wanted);
      if (at >= 0) lines.splice(at, 1); else lines.push(wanted);
      topics.value = lines.join("\n") + (lines.length ? "\n" : "");
      syncChips();
      schedulePreview(0);
    });
    syncChips();
  }

  // --- Example papers: titles from the catalogue as you type, added one per line ---
  var finder = document.getElementById("paper-finder");
  var examples = form.querySelector("textarea[name=example_papers]");
  if (finder && examples) {
    finder.hidden = false;
    var search = document.getElementById("paper-search");
    var titles = document.getElementById("catalogue-titles");
    var lookup = null;
    search.addEventListener("input", function () {
      clearTimeout(lookup);
      var q = search.value.trim();
      if (q.length < 3) return;
      lookup = setTimeout(function () {
        fetch(search.dataset.endpoint + "?" + new URLSearchParams({ q: q }).toString(), {
          headers: { Accept: "application/json" }, credentials: "same-origin",
        })
          .then(function (r) { return r.ok ? r.json() : { papers: [] }; })
          .then(function (data) {
            var options = (data.papers || []).slice(0, 8).map(function (paper) {
              var option = document.createElement("option");
              option.value = paper.title;
              return option;
            });
            titles.replaceChildren.apply(titles, options);
          })
          .catch(function () { /* no suggestions: typing a title or id still works */ });
      }, 250);
    });
    document.getElementById("paper-add").addEventListener("click", function () {
      var value = search.value.trim();
      if (!value) return;
      examples.value = (examples.value.trim() ? examples.value.trim() + "\n" : "") + value + "\n";
      search.value = "";
      schedulePreview(0);
    });
  }

  // --- Live preview ---
  var preview = document.getElementById("preview");
  if (!preview || !topics) return;
  var title = document.getElementById("preview-title");
  var status = document.getElementById("preview-status");
  var results = document.getElementById("preview-results");
  var initial = { html: results.innerHTML, status: status.textContent, title: title.textContent };
  var timer = null;
  var inflight = null;
  var lastQuery = null;

  function render(data) {
    var list = document.createElement("ol");
    list.className = "papers";
    data.papers.forEach(function (paper) {
      var item = document.createElement("li");
      item.className = "paper";
      var link;
      if (/^https?:\/\//i.test(paper.url)) {
        link = document.createElement("a");
        link.href = paper.url;
        link.rel = "noopener";
      } else {
        link = document.createElement("span");
      }
      link.className = "paper-title";
      link.textContent = paper.title;
      item.appendChild(link);
      if (paper.why) {
        var why = document.createElement("span");
        why.className = "paper-why";
        why.textContent = paper.why;
        item.appendChild(why);
      }
      list.appendChild(item);
    });
    results.replaceChildren(list);
    title.textContent = title.dataset.personal;
    status.textContent = data.summary;
  }

  function restore() {
    results.innerHTML = initial.html;
    status.textContent = initial.status;
    title.textContent = initial.title;
  }

  function typedAnything() {
    return [topics, authors, examples].some(function (field) { return field && field.value.trim(); });
  }

  function runPreview() {
    var exampleText = examples ? examples.value : "";
    var params = { topics: topics.value, authors: authors ? authors.value : "" };
    if (exampleText.trim()) params.example_papers = exampleText;
    var query = new URLSearchParams(params).toString();
    if (!typedAnything()) {
      lastQuery = null;
      if (inflight) inflight.abort();
      restore();
      return;
    }
    if (query === lastQuery) return;
    lastQuery = query;
    if (inflight) inflight.abort();
    inflight = new AbortController();
    preview.setAttribute("aria-busy", "true");
    fetch(preview.dataset.endpoint + "?" + query, {
      headers: { Accept: "application/json" },
      signal: inflight.signal,
      credentials: "same-origin",
    })
      .then(function (response) {
        if (response.status === 429) throw new Error("Too many previews at once; pausing for a moment.");
        if (response.status === 503) throw new Error("The preview is busy right now; it tries again as you type.");
        if (!response.ok) throw new Error("The preview is not available right now.");
        return response.json();
      })
      .then(render)
      .catch(function (error) {
        if (error.name === "AbortError") return;
        lastQuery = null;
        status.textContent = error.message;
      })
      .finally(function () { preview.removeAttribute("aria-busy"); });
  }

  function schedulePreview(delay) {
    clearTimeout(timer);
    timer = setTimeout(runPreview, delay === undefined ? 350 : delay);
  }

  topics.addEventListener("input", function () { syncChips(); schedulePreview(); });
  if (authors) authors.addEventListener("input", function () { schedulePreview(); });
  if (examples) examples.addEventListener("input", function () { schedulePreview(); });
  var button = document.getElementById("preview-button");
  if (button) {
    button.addEventListener("click", function (event) {
      event.preventDefault();
      lastQuery = null;
      schedulePreview(0);
    });
  }
  // A form that arrives filled in (a link's topic or paper, the preferences page) shows its preview at once.
  if (typedAnything() && results.dataset.server !== "1") schedulePreview(0);
})();
