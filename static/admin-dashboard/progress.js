// Keeps the dashboard's delivery progress bar current: polls the small JSON
// endpoint every 2 s while an issue is being sent, every 15 s when idle.
(function () {
  "use strict";
  var box = document.querySelector(".dash-progress[data-url]");
  if (!box) return;
  var title = box.querySelector(".dash-progress-title");
  var text = box.querySelector(".dash-progress-text");
  var track = box.querySelector(".dash-progress-track");
  var bar = box.querySelector(".dash-progress-bar");
  var number = new Intl.NumberFormat("en-US");

  function show(issue) {
    if (!issue) {
      box.dataset.state = "idle";
      title.textContent = "No issue yet";
      text.textContent = "";
      bar.style.width = "0%";
      return;
    }
    box.dataset.state = issue.in_progress ? "active" : "idle";
    box.dataset.issue = String(issue.issue_id);
    title.textContent = issue.in_progress ? "Sending " + issue.label : "Last issue " + issue.label + ": finished";
    text.textContent = number.format(issue.done) + " of " + number.format(issue.total) + " done (" + issue.percent + "%)";
    bar.style.width = issue.percent + "%";
    track.setAttribute("aria-valuenow", String(Math.round(issue.percent)));
  }

  function schedule() {
    window.setTimeout(poll, box.dataset.state === "active" ? 2000 : 15000);
  }

  function poll() {
    if (document.hidden) return schedule();
    fetch(box.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok || response.redirected) throw new Error("session ended or server error");
        return response.json();
      })
      .then(function (data) {
        show(data.issue);
        schedule();
      })
      .catch(function () {
        box.dataset.state = "idle";
        text.textContent = "Live updates stopped: reload the page.";
      });
  }

  schedule();
})();
