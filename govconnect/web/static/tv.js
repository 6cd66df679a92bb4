// The TV page (/tv/): rotating headlines, remote-control keys, urgent takeover; data from #tv-data.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("tv-data").textContent);
  var cfg = data.config, all = data.items;
  var tabs = Array.prototype.slice.call(document.querySelectorAll("#tabs span"));
  var list = document.getElementById("list"), hero = document.getElementById("hero");
  var detail = document.getElementById("detail"), alertBox = document.getElementById("alert");
  var tab = 0, sel = 0, heroIdx = 0, pausedUntil = 0, seenUrgent = {}, alertId = null;
  var BACK = {8: 1, 27: 1, 461: 1, 10009: 1};
  function esc(s) { var d = document.createElement("div"); d.textContent = s || ""; return d.innerHTML; }
  function shown() {
    var code = tabs[tab] ? tabs[tab].getAttribute("data-code") : "";
    return all.filter(function (i) { return !code || i._govconnect.category === code; });
  }
  function catName(code) {
    for (var k = 0; k < tabs.length; k++) { if (tabs[k].getAttribute("data-code") === code) return tabs[k].textContent; }
    return "";
  }
  function drawHero() {
    var items = shown(), i = items[heroIdx % Math.max(items.length, 1)];
    if (!i) { hero.innerHTML = "<h1>暂无通知</h1>"; return; }
    hero.innerHTML = '<div class="cat">' + esc(catName(i._govconnect.category)) + "</div><h1>" + esc(i.title) +
      "</h1><p>" + esc(i.content_text) + '</p><div class="time">' + esc(i._govconnect.published_local || "") + "</div>";
  }
  function drawList() {
    var items = shown();
    if (sel >= items.length) sel = Math.max(items.length - 1, 0);
    list.innerHTML = items.map(function (i, n) {
      return '<li tabindex="0" data-id="' + esc(i.id) + '"' + (n === sel ? ' class="sel"' : "") + ">" +
        (i._govconnect.urgent ? '<span class="u">【紧急】</span>' : "") + esc(i.title) + "</li>";
    }).join("") || '<li>暂无通知</li>';
    var li = list.children[sel]; if (li && li.focus) { li.focus(); }
    if (li && li.scrollIntoView) { li.scrollIntoView({block: "nearest"}); }
  }
  function drawTabs() { tabs.forEach(function (t, n) { t.className = n === tab ? "on" : ""; }); }
  function openDetail() {
    var i = shown()[sel]; if (!i) return;
    detail.querySelector("h2").textContent = i.title;
    detail.querySelector("p").textContent = i.content_text;
    detail.className = "show";
  }
  function checkUrgent() {
    if (alertId) return;
    for (var k = 0; k < all.length; k++) {
      var i = all[k];
      if (i._govconnect.urgent && !seenUrgent[i.id]) {
        alertId = i.id;
        alertBox.querySelector("h2").textContent = i.title;
        alertBox.querySelector("p").textContent = i.content_text;
        alertBox.className = "show";
        return;
      }
    }
  }
  document.addEventListener("keydown", function (e) {
    var k = e.key, code = e.keyCode;
    if (alertId) {
      if (k === "Enter" || k === "Backspace" || BACK[code]) { seenUrgent[alertId] = true; alertId = null; alertBox.className = ""; checkUrgent(); }
      e.preventDefault(); return;
    }
    if (detail.className === "show") {
      if (k === "Backspace" || BACK[code]) { detail.className = ""; drawList(); }
      e.preventDefault(); return;
    }
    var n = shown().length;
    if (k === "ArrowDown" && n) { sel = (sel + 1) % n; }
    else if (k === "ArrowUp" && n) { sel = (sel - 1 + n) % n; }
    else if (k === "ArrowRight") { tab = (tab + 1) % tabs.length; sel = 0; heroIdx = 0; drawTabs(); }
    else if (k === "ArrowLeft") { tab = (tab - 1 + tabs.length) % tabs.length; sel = 0; heroIdx = 0; drawTabs(); }
    else if (k === "Enter") { openDetail(); e.preventDefault(); return; }
    else if (k === "Backspace" || BACK[code]) { e.preventDefault(); return; }
    else { return; }
    e.preventDefault();
    heroIdx = sel; pausedUntil = Date.now() + 20000;
    drawList(); drawHero();
  });
  function refresh() {
    var url = cfg.feed + (cfg.region ? "?region=" + encodeURIComponent(cfg.region) : "");
    fetch(url, {cache: "no-cache"}).then(function (r) { return r.ok ? r.json() : null; }).then(function (doc) {
      if (!doc) return;
      all = doc.items || [];
      drawList(); drawHero(); checkUrgent();
    }).catch(function () {});
  }
  function tick() {
    // Beijing time whatever the set-top box's time zone (UTC+8, no daylight saving).
    var d = new Date(Date.now() + 8 * 3600 * 1000);
    document.getElementById("clock").textContent = ("0" + d.getUTCHours()).slice(-2) + ":" + ("0" + d.getUTCMinutes()).slice(-2);
  }
  setInterval(function () {
    if (Date.now() < pausedUntil || detail.className === "show") return;
    heroIdx = (heroIdx + 1) % Math.max(shown().length, 1); drawHero();
  }, cfg.rotate * 1000);
  setInterval(refresh, cfg.poll * 1000);
  setInterval(tick, 10000);
  tick(); drawTabs(); drawList(); drawHero(); checkUrgent();
})();
