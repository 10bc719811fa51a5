// The staff console's few behaviours on top of htmx: age timers, the new-order and new-chat chime, browser
// notifications for new chats, canned replies, the live indicator, and leaving for the login page when the
// session ends. No inline scripts (the CSP allows none).
(function () {
  "use strict";

  var seen = null; // ids of orders already shown in "received": a new one chimes
  var seenChats = null; // ids of tickets already shown waiting: a new one chimes and notifies
  var clockOffset = 0; // server time minus this device's time, in ms
  var audio = null;

  function soundOn() {
    var form = document.getElementById("sound");
    return !!form && form.dataset.sound === "on";
  }

  function count(name) {
    document.body.dataset[name] = String(Number(document.body.dataset[name] || 0) + 1);
  }

  function chime(counter) {
    count(counter || "newOrders");
    if (!soundOn()) return;
    count("chimes");
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      [0, 0.18].forEach(function (start, i) {
        var osc = audio.createOscillator();
        var gain = audio.createGain();
        osc.frequency.value = i ? 1175 : 880;
        gain.gain.setValueAtTime(0.25, audio.currentTime + start);
        gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + start + 0.16);
        osc.connect(gain).connect(audio.destination);
        osc.start(audio.currentTime + start);
        osc.stop(audio.currentTime + start + 0.17);
      });
    } catch (e) {
      // no audio on this device: the card still appears
    }
  }

  function checkNewOrders() {
    var columns = document.querySelector(".columns");
    if (!columns) return;
    if (columns.dataset.now) clockOffset = Date.parse(columns.dataset.now) - Date.now();
    var ids = Array.prototype.map.call(
      document.querySelectorAll('[data-column="received"] [data-order]'),
      function (card) { return card.dataset.order; }
    );
    if (seen !== null && ids.some(function (id) { return seen.indexOf(id) < 0; })) chime();
    seen = (seen || []).concat(ids.filter(function (id) { return (seen || []).indexOf(id) < 0; }));
  }

  function notify(title, body) {
    if (!soundOn() || !("Notification" in window) || Notification.permission !== "granted") return;
    try {
      new Notification(title, { body: body, tag: "comanda-inbox" });
      count("notifications");
    } catch (e) {
      // some browsers only notify from a service worker: the chime still rings
    }
  }

  function checkNewChats() {
    var list = document.querySelector(".inbox");
    if (!list) return;
    if (list.dataset.now) clockOffset = Date.parse(list.dataset.now) - Date.now();
    var rows = Array.prototype.slice.call(list.querySelectorAll('[data-status="waiting"][data-ticket]'));
    var fresh = rows.filter(function (row) { return seenChats !== null && seenChats.indexOf(row.dataset.ticket) < 0; });
    if (fresh.length) {
      chime("newChats");
      var who = fresh[0].querySelector(".who");
      var why = fresh[0].querySelector(".reason");
      notify(list.dataset.newTitle, (who ? who.textContent : "") + (why ? " · " + why.textContent : ""));
    }
    seenChats = (seenChats || []).concat(rows.map(function (row) { return row.dataset.ticket; }));
  }

  function offerNotifications() {
    var button = document.getElementById("notify");
    if (!button || !("Notification" in window) || Notification.permission !== "default") return;
    button.hidden = false;
    button.addEventListener("click", function () {
      Notification.requestPermission().then(function () { button.hidden = true; });
    });
  }

  function cannedReplies() {
    document.querySelectorAll("[data-canned]").forEach(function (button) {
      button.addEventListener("click", function (event) {
        var box = document.getElementById("reply-text");
        if (!box) return;
        event.preventDefault(); // with JavaScript a canned reply is filled in to edit; without, it is sent
        box.value = button.dataset.canned;
        box.focus();
      });
    });
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function tick() {
    var now = Date.now() + clockOffset;
    document.querySelectorAll("[data-since]").forEach(function (card) {
      var seconds = Math.max(0, Math.floor((now - Date.parse(card.dataset.since)) / 1000));
      var age = card.querySelector(".age");
      if (age) age.textContent = Math.floor(seconds / 60) + ":" + pad(seconds % 60);
      card.classList.toggle("late", seconds >= Number(card.dataset.late));
      if (card.dataset.warn) {
        card.classList.toggle("warn", seconds >= Number(card.dataset.warn) && seconds < Number(card.dataset.late));
      }
    });
  }

  function connection(live) {
    var badge = document.getElementById("connection");
    if (!badge) return;
    badge.textContent = live ? badge.dataset.live : badge.dataset.offline;
    badge.classList.toggle("offline", !live);
  }

  function toLogin() {
    window.location.href = "/console/login?expired=1&next=" + encodeURIComponent(location.pathname + location.search);
  }

  document.addEventListener("DOMContentLoaded", function () {
    checkNewOrders();
    checkNewChats();
    offerNotifications();
    cannedReplies();
    setInterval(tick, 1000);
    document.body.addEventListener("htmx:afterSettle", checkNewOrders);
    document.body.addEventListener("htmx:afterSettle", checkNewChats);
    document.body.addEventListener("htmx:sseOpen", function () { connection(true); });
    document.body.addEventListener("htmx:sseError", function () {
      connection(false);
      fetch("/console/session", { credentials: "same-origin" }).then(function (answer) {
        if (answer.status === 401) toLogin();
      });
    });
    document.body.addEventListener("htmx:sseMessage", function (event) {
      if (event.detail && event.detail.type === "logout") toLogin();
    });
    // Browsers let a page play sound only after a touch or a click on it.
    document.body.addEventListener("pointerdown", function () {
      if (audio && audio.state === "suspended") audio.resume();
    });
  });
})();
