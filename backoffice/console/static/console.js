// The staff console's few behaviours on top of htmx: age timers, the new-order chime, the live indicator,
// and leaving for the login page when the session ends. No inline scripts (the CSP allows none).
(function () {
  "use strict";

  var seen = null; // ids of orders already shown in "received": a new one chimes
  var clockOffset = 0; // server time minus this device's time, in ms
  var audio = null;

  function soundOn() {
    var form = document.getElementById("sound");
    return !!form && form.dataset.sound === "on";
  }

  function count(name) {
    document.body.dataset[name] = String(Number(document.body.dataset[name] || 0) + 1);
  }

  function chime() {
    count("newOrders");
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

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function tick() {
    var now = Date.now() + clockOffset;
    document.querySelectorAll(".card[data-since]").forEach(function (card) {
      var seconds = Math.max(0, Math.floor((now - Date.parse(card.dataset.since)) / 1000));
      var age = card.querySelector(".age");
      if (age) age.textContent = Math.floor(seconds / 60) + ":" + pad(seconds % 60);
      card.classList.toggle("late", seconds >= Number(card.dataset.late));
      card.classList.toggle("warn", seconds >= Number(card.dataset.warn) && seconds < Number(card.dataset.late));
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
    setInterval(tick, 1000);
    document.body.addEventListener("htmx:afterSettle", checkNewOrders);
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
