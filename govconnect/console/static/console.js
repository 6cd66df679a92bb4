// Operator console: live notice progress (polls a JSON endpoint), the compose form's mode switch and
// SMS length counter. Values from the server are written with textContent only, never as markup.
(function () {
  "use strict";

  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    row.appendChild(td);
  }

  function showProgress(section, data) {
    document.getElementById("overall-percent").textContent = data.percent + "%";
    document.getElementById("overall-bar").value = data.percent;
    var tag = document.querySelector("#notice-status .tag");
    if (tag) { tag.textContent = data.status_name; tag.className = "tag st-" + data.status; }
    var body = section.querySelector("#channel-progress tbody");
    while (body.firstChild) { body.removeChild(body.firstChild); }
    Object.keys(data.channels).forEach(function (channel) {
      var p = data.channels[channel];
      var row = document.createElement("tr");
      row.setAttribute("data-channel", channel);
      cell(row, p.label || channel);
      cell(row, p.percent + "%（" + p.done + "/" + p.total + "）");
      cell(row, String(p.sent), "num");
      cell(row, String(p.delivered), "num");
      cell(row, String(p.failed), "num");
      cell(row, String(p.queued), "num");
      body.appendChild(row);
    });
    var held = document.getElementById("held");
    while (held.firstChild) { held.removeChild(held.firstChild); }
    (data.held.length ? data.held : ["无"]).forEach(function (reason) {
      var li = document.createElement("li");
      li.textContent = reason;
      held.appendChild(li);
    });
    if (!data.live) { document.getElementById("live-note").textContent = ""; }
    // Actions the notice no longer allows (it finished, was approved ...) leave the page.
    Array.prototype.forEach.call(document.querySelectorAll("[data-action]"), function (el) {
      el.classList.toggle("hidden", data.actions.indexOf(el.getAttribute("data-action")) < 0);
    });
    var shown = document.getElementById("d-total");
    if (shown && data.version !== shown.getAttribute("data-version")) {
      document.getElementById("d-stale").classList.remove("hidden");
    }
  }

  function poll(section) {
    var url = section.getAttribute("data-url");
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (data) {
        showProgress(section, data);
        if (data.live) { window.setTimeout(function () { poll(section); }, 2000); }
      })
      .catch(function () { window.setTimeout(function () { poll(section); }, 5000); });
  }

  function smsCounter(form) {
    var body = document.getElementById("body");
    var out = document.getElementById("sms-counter");
    if (!body || !out) { return; }
    var sign = form.getAttribute("data-sign") || "";
    function update() {
      var text = body.value.trim();
      if (!text) { out.textContent = ""; return; }
      var full = (sign ? "【" + sign + "】" : "") + text.replace(/\(\(\s*[^()\s]+\s*\)\)/g, "") + "回T退订";
      var parts = full.length <= 70 ? 1 : Math.ceil(full.length / 67);
      out.textContent = "短信约 " + full.length + " 字（含签名和退订提示，不含占位符），按 " + parts + " 条计费";
    }
    body.addEventListener("input", update);
    update();
  }

  function modeSwitch(form) {
    var radios = form.querySelectorAll('input[name="mode"]');
    function apply() {
      var mode = form.querySelector('input[name="mode"]:checked');
      var value = mode ? mode.value : "text";
      form.querySelector(".mode-template").classList.toggle("hidden", value !== "template");
      form.querySelector(".mode-text").classList.toggle("hidden", value !== "text");
    }
    Array.prototype.forEach.call(radios, function (r) { r.addEventListener("change", apply); });
    apply();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var section = document.getElementById("progress");
    if (section && section.getAttribute("data-live") === "yes") {
      window.setTimeout(function () { poll(section); }, 1000);
    }
    var form = document.getElementById("compose-form");
    if (form) { modeSwitch(form); smsCounter(form); }
  });
})();
