// emugen dashboard, "What is due": each stream's next tick as beat plans it (snapshot.due),
// with a countdown that ticks in the browser between snapshots.
//
// It reads the snapshots the page already receives, without a stream of its own (a browser
// opens at most 6 connections per host, so a second stream per tab would halve the tabs one
// can keep open): it hears the `snapshot` events of every EventSource the page opens on
// /api/stream, or `emugen:snapshot` events should the page dispatch them. With neither for a
// while (the page polling, or streaming some other way), it polls /api/health, which carries
// `due` too.
"use strict";
(() => {
  const STREAMS = ["companies", "events"];
  const POLL_MS = 2000;
  const QUIET_MS = 6000; // no snapshot heard for this long: poll /api/health meanwhile
  const $ = (id) => document.getElementById(id);
  let due = null, skew = 0, heard = 0;

  // mirrors emugen.fleet.due.countdown: coarse, as a person reads a timetable
  function countdown(seconds) {
    if (seconds < 0.5) return "now";
    if (seconds < 90) return `in ${Math.round(seconds)} s`;
    const minutes = Math.round(seconds / 60);
    if (minutes < 60) return `in ${minutes} min`;
    const h = Math.floor(minutes / 60), m = minutes % 60;
    return `in ${h} h${m ? ` ${m} min` : ""}`;
  }
  const clock = (iso) => new Date(iso).toLocaleTimeString("en-GB", { hour12: false });

  function setText(node, text) {
    if (node && node.textContent !== text) node.textContent = text;
  }

  function draw() {
    if (!due) return;
    for (const name of STREAMS) {
      const d = (due.streams || {})[name];
      const when = $(`due-${name}-when`), every = $(`due-${name}-every`);
      if (!when || !every) continue;
      when.parentElement.dataset.nextAt = d ? d.next_at : "";
      if (!due.known || !d) {
        setText(when, "unknown");
        setText(every, "");
      } else if (due.paused) {
        setText(when, `${name} batches paused`);
        setText(every, d.every);
      } else {
        const left = (Date.parse(d.next_at) - (Date.now() + skew)) / 1000;
        setText(when, `next ${name} batch ${clock(d.next_at)}, ${countdown(left)}`);
        when.parentElement.title = `${d.next_at} (beat's last tick ${d.last_at})`;
        setText(every, d.every);
      }
    }
    const note = $("due-note");
    if (note) {
      setText(note, due.note || "");
      note.hidden = !due.note;
    }
  }

  function take(snapshot) {
    if (!snapshot || !snapshot.due) return;
    due = snapshot.due;
    if (snapshot.now) skew = Date.parse(snapshot.now) - Date.now();
    draw();
  }
  function hear(snapshot) {
    heard = Date.now();
    take(snapshot);
  }

  // every stream the page opens on /api/stream also feeds this panel
  const Native = window.EventSource;
  if (Native) {
    window.EventSource = class extends Native {
      constructor(url, options) {
        super(url, options);
        if (String(url).includes("/api/stream")) {
          this.addEventListener("snapshot", (e) => {
            try { hear(JSON.parse(e.data)); } catch (_) { /* the page reports bad data */ }
          });
        }
      }
    };
  }
  document.addEventListener("emugen:snapshot", (e) => hear(e.detail));

  async function poll() {
    if (Date.now() - heard < QUIET_MS) return;
    try {
      const r = await fetch("/api/health", { cache: "no-store" });
      if (r.ok) take(await r.json());
    } catch (_) { /* the next round tries again */ }
  }

  document.addEventListener("DOMContentLoaded", () => {
    heard = Date.now(); // the page's own stream opens now: give it QUIET_MS to speak
    setInterval(draw, 1000); // the countdown ticks between snapshots
    setInterval(poll, POLL_MS);
  });
})();
