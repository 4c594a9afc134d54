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
      decision.submit();
    });
  }

  function choose(key) {
    if (!decision) { return; }
    chosen = decision.querySelector("[data-key=" + key + "]");
    decision.querySelectorAll("button").forEach(function (b) { b.classList.toggle("chosen", b === chosen); });
    decision.querySelector("textarea").focus();
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
