// The auditors' desk: work through the queue and the evidence from the keyboard.
//
// Queue: J/K move, Enter opens. Review: J/K move between face checks, C puts the cursor in the
// focused check's clear reason, A/R choose approve/reject and put the cursor in the reason box
// (Ctrl+Enter sends; never without a reason), N opens the next enrolment, Esc leaves a text box.
(function () {
  "use strict";

  function typing(event) {
    var tag = event.target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || event.target.isContentEditable;
  }

  function mover(items, onEnter) {
    var index = -1;
    // Focus moved by Tab, a click or a restored place counts as the current item.
    document.addEventListener("focusin", function (event) {
      var at = items.indexOf(event.target);
      if (at >= 0) { index = at; }
    });
    function go(step) {
      if (!items.length) { return; }
      index = Math.max(0, Math.min(items.length - 1, index + step));
      items[index].focus();
      items[index].scrollIntoView({ block: "nearest" });
    }
    return { go: go, enter: function () { if (index >= 0 && onEnter) { onEnter(items[index]); } },
             current: function () { return index >= 0 ? items[index] : null; } };
  }

  var rows = Array.prototype.slice.call(document.querySelectorAll("[data-keyboard-list] tr[data-href]"));
  rows.forEach(function (row) { row.tabIndex = 0; });
  var queue = mover(rows, function (row) { window.location = row.dataset.href; });

  var desk = document.querySelector("[data-desk]");
  var checks = mover(Array.prototype.slice.call(document.querySelectorAll(".check-card")));
  var decision = document.getElementById("decision");
  var PLACE = "veriskill.desk.place";
  var chosen = null;

  if (decision) {
    // After A or R, Ctrl+Enter in the reason box sends the chosen decision.
    decision.querySelector("textarea").addEventListener("keydown", function (event) {
      if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey) || !chosen) { return; }
      event.preventDefault();
      if (!this.value.trim()) { return; }
      var hidden = document.createElement("input");
      hidden.type = "hidden"; hidden.name = "decision"; hidden.value = chosen.value;
      decision.appendChild(hidden);
      savePlace();  // submit() sends no submit event
      decision.submit();
    });
  }

  function choose(key) {
    if (!decision) { return; }
    chosen = decision.querySelector("[data-key=" + key + "]");
    decision.querySelectorAll("button").forEach(function (b) { b.classList.toggle("chosen", b === chosen); });
    decision.querySelector("textarea").focus();
  }

  // Keep the auditor's place across a decision: the form's POST redirects back to the part of
  // the page acted on (#check-12, #flag-3, #decision). The page scrolls back to where it was
  // and the focus goes to the next check after the one acted on (or to that part itself).
  function savePlace() {
    try {
      sessionStorage.setItem(PLACE, JSON.stringify(
        { path: location.pathname, y: window.scrollY, at: Date.now() }));
    } catch (e) { /* private mode: the anchor alone still brings the part into view */ }
  }
  document.querySelectorAll("form[data-keep-place]").forEach(function (form) {
    form.addEventListener("submit", savePlace);
  });

  function restorePlace() {
    var saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(PLACE) || "null");
      sessionStorage.removeItem(PLACE);
    } catch (e) { saved = null; }
    var target = location.hash ? document.getElementById(location.hash.slice(1)) : null;
    if (!target) { return; }
    var focus = target;
    if (target.classList.contains("check-card")) {
      var cards = Array.prototype.slice.call(document.querySelectorAll(".check-card"));
      var at = cards.indexOf(target);
      focus = cards[at + 1] || target;
    }
    focus.focus({ preventScroll: true });
    if (saved && saved.path === location.pathname && Date.now() - saved.at < 120000) {
      window.scrollTo(0, saved.y);
    }
    if (!isVisible(focus)) { focus.scrollIntoView({ block: "nearest" }); }
  }

  function isVisible(element) {
    var box = element.getBoundingClientRect();
    return box.bottom > 0 && box.top < window.innerHeight;
  }

  if (location.hash) {
    // After the browser's own jump to the anchor, so ours is the last word.
    window.addEventListener("load", function () { window.setTimeout(restorePlace, 0); });
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (typing(event)) {
      if (event.key === "Escape") { event.target.blur(); }
      return;
    }
    var key = event.key.toLowerCase();
    var list = desk ? checks : queue;
    if (key === "j") { list.go(1); event.preventDefault(); }
    else if (key === "k") { list.go(-1); event.preventDefault(); }
    else if (key === "enter" && !desk) { queue.enter(); }
    else if (desk && key === "c") {
      var card = checks.current();
      var input = card && card.querySelector(".clear-form input[name=reason]");
      if (input) { input.focus(); event.preventDefault(); }
    } else if (desk && (key === "a" || key === "r")) { choose(key); event.preventDefault(); }
    else if (desk && key === "n" && desk.dataset.next) { window.location = desk.dataset.next; }
  });
})();
