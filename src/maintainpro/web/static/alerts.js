// Alert list: a "select all" checkbox for the bulk form, and a count of the chosen alerts.
"use strict";
(function () {
  function boxes() {
    return Array.prototype.slice.call(document.querySelectorAll("input[data-alert-id]"));
  }
  function update(all, count) {
    var chosen = boxes().filter(function (b) { return b.checked; }).length;
    var total = boxes().length;
    if (all) {
      all.checked = total > 0 && chosen === total;
      all.indeterminate = chosen > 0 && chosen < total;
    }
    if (count) { count.textContent = chosen ? chosen + " selected" : ""; }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var all = document.getElementById("select-all");
    var count = document.getElementById("selected-count");
    if (all) {
      all.addEventListener("change", function () {
        boxes().forEach(function (b) { b.checked = all.checked; });
        update(all, count);
      });
    }
    boxes().forEach(function (b) {
      b.addEventListener("change", function () { update(all, count); });
    });
    update(all, count);
  });
})();
