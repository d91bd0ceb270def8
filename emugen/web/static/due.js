// emugen dashboard, "What is due": each stream's next tick as beat plans it (snapshot.due),
// with a countdown that ticks in the browser between snapshots. Its own file and its own
// stream, so it works beside dashboard.js without touching it; if the page ever dispatches
// `emugen:snapshot` events (detail = the snapshot), it uses those and closes its own stream.
"use strict";
(() => {
  const STREAMS = ["companies", "events"];
  const POLL_MS = 2000; // /api/health while the stream is down (health carries `due` too)
  const $ = (id) => document.getElementById(id);
  let due = null, skew = 0, source = null, pollTimer = null, shared = false;

  // mirrors emugen.due.countdown: coarse, as a person reads a timetable
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

  async function poll() {
    try {
      const r = await fetch("/api/health", { cache: "no-store" });
      if (r.ok) take(await r.json());
    } catch (_) { /* the next round tries again */ }
  }

  function connect() {
    if (shared) return;
    if (!window.EventSource) {
      pollTimer = pollTimer || setInterval(poll, POLL_MS);
      poll();
      return;
    }
    source = new EventSource("/api/stream");
    source.addEventListener("snapshot", (e) => {
      if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
      take(JSON.parse(e.data));
    });
    source.onerror = () => {
      // EventSource retries by itself; meanwhile the plan is polled from /api/health
      if (!pollTimer && !shared) pollTimer = setInterval(poll, POLL_MS);
    };
  }

  document.addEventListener("emugen:snapshot", (e) => {
    if (!shared && source) source.close();
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
    shared = true;
    take(e.detail);
  });
  document.addEventListener("DOMContentLoaded", () => {
    connect();
    setInterval(draw, 1000); // the countdown ticks between snapshots
  });
})();
