// The console's live refresh. Every few seconds the page's live region (#live) is fetched again
// and replaced, unless the operator is reading or acting: text selected, the pointer over the
// region or a field in it focused, a box ticked, the page scrolled, the tab hidden, or the pause
// button pressed. Failures are said in the bar above the region, which keeps what it showed.
// Without this script every page works the same, only without refreshing itself.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch || !window.DOMParser) {
    return;
  }
  var every = Number(live.getAttribute("data-interval")) || 5000;
  var held = false;
  var pointerInside = false;
  var lastRefresh = Date.now();
  var inFlight = false;
  var failure = null;
  var refreshes = 0;

  var bar = document.createElement("div");
  bar.className = "live-bar";
  var status = document.createElement("span");
  status.id = "live-status";
  status.setAttribute("aria-live", "polite");
  var toggle = document.createElement("button");
  toggle.type = "button";
  toggle.id = "live-toggle";
  bar.appendChild(toggle);
  bar.appendChild(document.createTextNode(" "));
  bar.appendChild(status);
  live.parentNode.insertBefore(bar, live);

  toggle.addEventListener("click", function () {
    held = !held;
    lastRefresh = 0;
    show();
  });
  live.addEventListener("mouseenter", function () { pointerInside = true; });
  live.addEventListener("mouseleave", function () { pointerInside = false; });

  function selectedText() {
    var selection = window.getSelection && window.getSelection();
    return !!selection && !selection.isCollapsed && selection.toString().trim() !== "";
  }

  // Why the refresh waits, or null when it does not.
  function pausedBecause() {
    if (held) { return "paused"; }
    if (document.hidden) { return "paused while the tab is hidden"; }
    if (selectedText()) { return "paused while text is selected"; }
    if (live.querySelector("input[type=checkbox]:checked")) { return "paused while a box is ticked"; }
    var focused = document.activeElement;
    if (focused && focused !== live && live.contains(focused)) { return "paused while a field has focus"; }
    if (pointerInside) { return "paused while the pointer is over the list"; }
    if ((window.scrollY || window.pageYOffset) > 0) { return "paused while the page is scrolled"; }
    return null;
  }

  function clock(date) {
    return date.toTimeString().slice(0, 8);
  }

  function show() {
    toggle.textContent = held ? "Resume live updates" : "Pause live updates";
    var why = pausedBecause();
    bar.setAttribute("data-state", failure ? "error" : why ? "paused" : "live");
    live.setAttribute("data-refreshes", String(refreshes));
    if (failure) {
      status.textContent = failure;
    } else if (why) {
      status.textContent = "Live updates " + why + ".";
    } else {
      status.textContent = "Live: refreshed every " + Math.round(every / 1000) + " s" +
        (refreshes > 0 ? ", last at " + clock(new Date(lastRefresh)) : "") + ".";
    }
  }

  function fail(message) {
    failure = message;
    show();
  }

  function refresh() {
    inFlight = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.redirected && new URL(response.url).pathname === "/admin/login") {
          throw new Error("The session has ended: reload the page to sign in again.");
        }
        if (!response.ok) {
          throw new Error("Refresh failed (HTTP " + response.status + "); showing the last answer, trying again.");
        }
        return response.text();
      })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var fresh = page.getElementById("live");
        if (!fresh) {
          throw new Error("Refresh failed: the answer had no list; trying again.");
        }
        if (pausedBecause()) {
          return;
        }
        var nodes = [];
        fresh.childNodes.forEach(function (node) { nodes.push(document.importNode(node, true)); });
        live.replaceChildren.apply(live, nodes);
        refreshes += 1;
        failure = null;
      })
      .catch(function (error) {
        fail(error instanceof TypeError
          ? "Refresh failed: the console did not answer; showing the last answer, trying again."
          : error.message);
      })
      .then(function () {
        inFlight = false;
        lastRefresh = Date.now();
        show();
      });
  }

  window.setInterval(function () {
    if (!inFlight && !pausedBecause() && Date.now() - lastRefresh >= every) {
      refresh();
    }
    show();
  }, 500);
  show();
})();
