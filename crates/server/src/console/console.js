// The two things in the console that need JavaScript: the overview's slider (replaying the
// groups day by day) and the ledger page's live feed. Every page works without this file.
"use strict";

(function () {
  function isoDay(start, offset) {
    const d = new Date(start + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + offset);
    return d.toISOString().slice(0, 10);
  }

  // The slider: each day it stops on, the overview is fetched from the server (the same
  // page as the date picker would give) and its main part swapped in.
  const replay = document.getElementById("replay");
  if (replay) {
    const slider = document.getElementById("slider");
    const shown = document.getElementById("slider-date");
    const start = replay.dataset.start;
    const picker = document.getElementById("on");
    let wanted = null;
    let busy = false;
    replay.hidden = false;
    async function load(day) {
      wanted = day;
      if (busy) return;
      busy = true;
      try {
        while (wanted) {
          const d = wanted;
          wanted = null;
          const url = new URL(location.href);
          url.searchParams.set("on", d);
          const answer = await fetch(url, { credentials: "same-origin" });
          // a session that ended meanwhile: go where the server sends (the login form)
          if (answer.redirected) { location.assign(answer.url); return; }
          if (!answer.ok) break;
          const page = new DOMParser().parseFromString(await answer.text(), "text/html");
          for (const sel of ["main", ".provenance", "nav"]) {
            const fresh = page.querySelector(sel);
            const old = document.querySelector(sel);
            if (fresh && old) swap(old, fresh);
          }
          history.replaceState(null, "", url);
          if (picker) picker.value = d;
        }
      } finally {
        busy = false;
      }
    }
    // Replace what `old` holds by what `fresh` holds, but keep the slider itself in place
    // (moving the focused element out of the page would lose the keyboard's focus).
    function swap(old, fresh) {
      if (!old.contains(replay)) {
        old.replaceChildren(...fresh.childNodes);
        return;
      }
      for (const child of [...old.childNodes]) if (child !== replay) child.remove();
      const marker = fresh.querySelector("#replay");
      let before = true;
      for (const child of [...fresh.childNodes]) {
        if (child === marker) { before = false; continue; }
        if (before) old.insertBefore(child, replay); else old.appendChild(child);
      }
    }
    slider.addEventListener("input", function () {
      const d = isoDay(start, Number(slider.value));
      shown.textContent = d;
      slider.setAttribute("aria-valuetext", d);
      load(d);
    });
  }

  // A recording time as the server shows it: Shanghai (UTC+8, no summer time).
  function shanghai(us) {
    const t = new Date(Math.floor(us / 1000) + 8 * 3600 * 1000).toISOString().slice(0, 19);
    return t + "." + String(us % 1000000).padStart(6, "0") + "+08:00";
  }

  // The live feed: events recorded from now on, newest first, each linked to its page.
  const status = document.getElementById("feed-status");
  const feed = document.getElementById("feed");
  if (status && feed && window.EventSource) {
    const source = new EventSource("/ledger/feed?from=" + encodeURIComponent(status.dataset.from));
    status.hidden = false;
    source.onmessage = function (m) {
      let e;
      try { e = JSON.parse(m.data); } catch (_) { return; }
      const row = document.createElement("tr");
      row.id = "e" + e.seq;
      const cells = [
        null,
        shanghai(e.recorded_at_us),
        e.event_type,
        e.actor,
        e.source || "",
        e.reason || "",
        "新",
      ];
      cells.forEach(function (text, i) {
        const td = document.createElement("td");
        if (i === 0) {
          const a = document.createElement("a");
          // (the reader's date goes along, as with every link; the feed has no cut)
          const on = new URL(location.href).searchParams.get("on");
          a.href = "/events/" + e.seq + (on ? "?on=" + encodeURIComponent(on) : "");
          a.textContent = "#" + e.seq;
          td.appendChild(a);
        } else {
          td.textContent = text;
        }
        row.appendChild(td);
      });
      feed.prepend(row);
      const head = document.getElementById("head-digest");
      if (head) head.textContent = e.seq + ":" + e.hash;
      status.textContent = "已接收新事件至 #" + e.seq;
    };
    source.onerror = function () {
      status.textContent = "实时连接中断，正在重试……";
    };
  }
})();
