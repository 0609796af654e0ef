// Refresh the page's data in place every few seconds, without a full reload; only while the tab is visible
// and no form field has focus (a half-typed search or a ticked confirmation is not thrown away).
(function () {
  "use strict";
  const live = document.getElementById("live");
  if (!live || !live.dataset.refresh) return;
  const seconds = Number(live.dataset.refresh) || 5;
  async function refresh() {
    const active = document.activeElement;
    if (document.hidden || (active && active.closest && active.closest("form"))) return;
    if (live.querySelector("input[type=checkbox]:checked")) return;
    try {
      const answer = await fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!answer.ok || answer.redirected) return;
      const page = new DOMParser().parseFromString(await answer.text(), "text/html");
      const fresh = page.getElementById("live");
      if (fresh) live.replaceChildren(...fresh.childNodes);
    } catch (error) {
      // the next tick tries again; a bridge that restarts is no reason to fill the console with errors
    }
  }
  window.setInterval(refresh, seconds * 1000);
})();
