// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";

  // Keep each threshold slider and its number box in step.
  document.addEventListener("input", function (event) {
    var el = event.target;
    if (el.matches && el.matches("input[type=range][data-mirror]")) {
      var box = document.getElementById(el.getAttribute("data-mirror"));
      if (box) box.value = el.value;
    } else if (el.matches && el.matches("input[type=number][name=min_lead_score]")) {
      var slider = el.closest("form") && el.closest("form").querySelector("input[type=range][data-mirror='" + el.id + "']");
      if (slider && el.value !== "") slider.value = el.value;
    }
  });

  // Ask before destructive plain forms (htmx forms use hx-confirm).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // Select the whole invitation link when it gets focus, ready to copy.
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("[data-select-on-focus]")) event.target.select();
  });

  // Let a status message fade after a while; the live region stays in place.
  var timer = null;
  function scheduleClear() {
    var status = document.getElementById("status");
    if (!status || !status.textContent.trim()) return;
    clearTimeout(timer);
    timer = setTimeout(function () { status.textContent = ""; }, 6000);
  }
  document.addEventListener("htmx:oobAfterSwap", scheduleClear);
  document.addEventListener("DOMContentLoaded", scheduleClear);
})();
