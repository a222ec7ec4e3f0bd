// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";

  // A row of the recipients grid names its fields for the grid's own form ("r12-sms_enabled");
  // saved on its own, the row sends them under their plain names, as one recipient's form does.
  document.addEventListener("htmx:configRequest", function (event) {
    var prefix = event.detail.elt.getAttribute("data-field-prefix");
    if (!prefix) return;
    var plain = {};
    event.detail.formData.forEach(function (value, name) {
      if (name.indexOf(prefix) === 0) plain[name.slice(prefix.length)] = value;
    });
    event.detail.parameters = plain;
  });

  // A choice the business holds off stays focusable (its reason shows on focus) but does not move.
  document.addEventListener("click", function (event) {
    var el = event.target;
    if (el.matches && el.matches("input[type=checkbox][aria-disabled=true]")) event.preventDefault();
  });

  // A row's "More" stays open when the row is saved and drawn again.
  var open = [];
  document.addEventListener("htmx:beforeSwap", function () {
    open = Array.prototype.map.call(document.querySelectorAll("details[data-keep-open][open]"), function (d) { return d.id; });
  });
  document.addEventListener("htmx:afterSwap", function () {
    open.forEach(function (id) {
      var d = document.getElementById(id);
      if (d) d.open = true;
    });
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

  // The bell (and the inbox, when it is open) follow the server's stream of inbox changes. While
  // the stream is down (EventSource reconnects by itself) the bell is asked for every 10 s.
  function replaceWith(id, html) {
    var old = document.getElementById(id);
    if (!old) return;
    var holder = document.createElement("template");
    holder.innerHTML = html.trim();
    if (holder.content.firstElementChild) old.replaceWith(holder.content.firstElementChild);
  }
  function refresh(url, id) {
    if (!document.getElementById(id)) return;
    fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html) replaceWith(id, html); })
      .catch(function () {});
  }
  function inboxChanged() {
    refresh("/notifications/card", "inbox-card");
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (!document.getElementById("bell") || !window.EventSource) return;
    var polling = null;
    function poll() { refresh("/notifications/bell", "bell"); }
    function startPolling() { if (!polling) polling = setInterval(poll, 10000); }
    function stopPolling() { clearInterval(polling); polling = null; }
    var stream = new EventSource("/notifications/stream");
    stream.addEventListener("open", stopPolling);
    stream.addEventListener("error", startPolling);
    var first = true;
    stream.addEventListener("bell", function (event) {
      replaceWith("bell", event.data);
      if (!first) inboxChanged();
      first = false;
    });
  });
})();
