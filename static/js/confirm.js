// A form with data-confirm="…" asks before it submits (the Content-Security-Policy allows no inline handlers).
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
}, true);
