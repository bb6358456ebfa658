// Dashboards list: create a dashboard or import one from an exported JSON file (the server checks
// the whole document and names every problem; nothing is saved unless all of it is right).
"use strict";
(function () {
  var status = document.getElementById("dashboards-status");
  function csrf() { return document.querySelector('meta[name="csrf-token"]').getAttribute("content"); }
  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", body: body,
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf() },
    }).then(function (r) {
      return r.json().then(function (data) { if (!r.ok) { throw new Error(data.detail || ("HTTP " + r.status)); } return data; });
    });
  }
  document.getElementById("new-dashboard").addEventListener("submit", function (event) {
    event.preventDefault();
    var refreshS = Number(document.getElementById("dashboard-refresh").value);
    if (!Number.isInteger(refreshS) || refreshS < 0 || refreshS > 86400 || (refreshS > 0 && refreshS < 5)) {
      status.textContent = "Not created: the refresh interval is 0 (off) or 5 to 86400 seconds.";
      return;
    }
    var roles = Array.prototype.filter.call(document.querySelectorAll('#new-dashboard input[name="shared_roles"]'), function (b) { return b.checked; }).map(function (b) { return b.value; });
    post("/api/v1/dashboards", JSON.stringify({
      name: document.getElementById("dashboard-name").value,
      refresh_s: refreshS,
      shared_roles: roles,
    })).then(function (d) { window.location.assign("/analytics/dashboards/" + d.id); })
      .catch(function (error) { status.textContent = "Not created: " + error.message; });
  });
  document.getElementById("import-dashboard").addEventListener("submit", function (event) {
    event.preventDefault();
    var file = document.getElementById("import-file").files[0];
    if (!file) { return; }
    file.text().then(function (text) {
      // A file that is not JSON at all gets a plain message before anything is sent.
      try { JSON.parse(text); } catch (error) { throw new Error("the file is not JSON (export a dashboard with Export JSON)"); }
      return post("/api/v1/dashboards/import", text);
    })
      .then(function (result) { window.location.assign("/analytics/dashboards/" + result.dashboard.id); })
      .catch(function (error) { status.textContent = "Not imported: " + error.message; });
  });
})();
