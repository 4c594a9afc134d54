// The header's menu button: on small screens it opens and closes the navigation under the
// bar. Without this script the button stays hidden and the navigation shows in full.
(function () {
  "use strict";
  var bar = document.getElementById("topbar");
  var button = document.getElementById("menu-toggle");
  var nav = document.getElementById("site-nav");
  if (!bar || !button || !nav) { return; }
  bar.classList.add("has-menu");
  button.hidden = false;

  function setOpen(open, returnFocus) {
    bar.classList.toggle("menu-open", open);
    button.setAttribute("aria-expanded", open ? "true" : "false");
    if (!open && returnFocus) { button.focus(); }
  }

  button.addEventListener("click", function () {
    setOpen(button.getAttribute("aria-expanded") !== "true", false);
  });
  // Escape closes the open menu and puts focus back on its button.
  bar.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && bar.classList.contains("menu-open")) {
      setOpen(false, true);
    }
  });
  // A tap or click outside the header closes it too.
  document.addEventListener("click", function (event) {
    if (bar.classList.contains("menu-open") && !bar.contains(event.target)) {
      setOpen(false, false);
    }
  });
})();
