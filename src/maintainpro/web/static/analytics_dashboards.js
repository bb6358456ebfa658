// Dashboards list: create a dashboard or import one from an exported JSON file.
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
    var roles = Array.prototype.filter.call(document.querySelectorAll('#new-dashboard input[name="shared_roles"]'), function (b) { return b.checked; }).map(function (b) { return b.value; });
    post("/api/v1/dashboards", JSON.stringify({
      name: document.getElementById("dashboard-name").value,
      refresh_s: parseInt(document.getElementById("dashboard-refresh").value, 10) || 0,
      shared_roles: roles,
    })).then(function (d) { window.location.assign("/analytics/dashboards/" + d.id); })
      .catch(function (error) { status.textContent = "Not created: " + error.message; });
  });
  document.getElementById("import-dashboard").addEventListener("submit", function (event) {
    event.preventDefault();
    var file = document.getElementById("import-file").files[0];
    if (!file) { return; }
    file.text().then(function (text) { return post("/api/v1/dashboards/import", text); })
      .then(function (result) { window.location.assign("/analytics/dashboards/" + result.dashboard.id); })
      .catch(function (error) { status.textContent = "Not imported: " + error.message; });
  });
})();
