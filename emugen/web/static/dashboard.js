// emugen dashboard: renders each snapshot pushed on /api/stream (server-sent events);
// falls back to polling /api/snapshot while the stream is down. No framework, no build step.
"use strict";
(() => {
  const POLL_MS = 1000; // the polling fallback's period (emugen bench sse measures it)
  const RECONNECT_MS = 3000;
  const STALE_MS = 12000; // no snapshot nor heartbeat for this long: the stream is not live
  const STREAMS = ["companies", "events"];
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  let snap = null, skew = 0, source = null, pollTimer = null, lastId = null;
  let staleTimer = null, unreachableSince = null, reconnectedTimer = null;

  // -- formatting ---------------------------------------------------------------------------
  const pct = (v) => (v == null ? "–" : `${Number(v.toFixed(1))} %`);
  const ms = (v) => (v == null ? "–" : v < 1000 ? `${Math.round(v)} ms`
    : `${(v / 1000).toFixed(2)} s`);
  const num = (v) => (v == null ? "–" : Number(v).toLocaleString("en"));
  function age(iso) {
    if (!iso) return "never";
    const s = Math.max(0, (Date.now() + skew - Date.parse(iso)) / 1000);
    if (s < 90) return `${Math.round(s)} s ago`;
    if (s < 5400) return `${Math.round(s / 60)} min ago`;
    return `${(s / 3600).toFixed(1)} h ago`;
  }
  function setText(id, value) {
    const el = $(id);
    if (el && el.textContent !== String(value)) el.textContent = value;
  }
  function el(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text != null) node.textContent = text;
    return node;
  }
  function svgEl(tag, attrs = {}, title) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (title) node.appendChild(svgEl("title")).textContent = title;
    return node;
  }
  function row(cells, header) {
    const tr = el("tr");
    cells.forEach((c, i) => {
      const cell = el(i === 0 && header ? "th" : "td", i === 0 && header ? { scope: "row" } : {});
      if (c instanceof Node) cell.appendChild(c); else cell.textContent = c;
      tr.appendChild(cell);
    });
    return tr;
  }
  function resetSvg(svg, titleText) {
    while (svg.lastChild) svg.removeChild(svg.lastChild);
    svg.appendChild(svgEl("title", { id: svg.getAttribute("aria-labelledby") })).textContent = titleText;
  }

  // -- rendering ----------------------------------------------------------------------------
  function render(s) {
    snap = s;
    skew = Date.parse(s.now) - Date.now();
    renderHeader(s);
    for (const name of STREAMS) {
      const st = s.streams[name] || {};
      setText(`count-${name}`, st.gold ?? 0);
      $(`age-${name}`).dataset.at = st.last_batch_at || "";
      setText(`inflight-${name}`, num(st.in_flight));
      setText(`failed-${name}`, num(st.failed));
      setText(`records-${name}`, num(st.records));
      const ar = st.arrivals || {};
      for (const c of ["late", "redelivered", "delayed"]) setText(`${c}-${name}`, num(ar[c] ?? 0));
      setText(`contract-${name}`, `v${ar.contract_version ?? 1}`);
    }
    const gw = s.gold_windows || {};
    setText("gold-windows-revised", `${num(gw.revised ?? 0)} (most revisions ${num(gw.max_revisions ?? 0)})`);
    setText("batches-per-minute", s.throughput.batches_per_minute);
    setText("records-per-second", s.throughput.records_per_second);
    setText("throughput-window", `${Math.round(s.throughput.window_s)} s`);
    renderAges();
    renderQueues(s);
    renderConfig(s);
    if (s.quality) renderQuality(s.quality);
    renderExternal(s.external);
    if (s.latency) renderLatency(s.latency);
    if (s.recent) renderTimeline(s.recent);
    onHistory(s);
  }

  function renderHeader(s) {
    const mode = s.generation_mode || "unknown";
    const badge = $("mode");
    setText("mode", mode);
    badge.className = `badge mode-${mode}`;
    const target = mode === "production" ? "emulated" : "production";
    $("mode-toggle").dataset.target = target;
    setText("mode-toggle", `Switch to ${target}`);
    setText("status", s.status);
    $("status").className = `badge status-${s.status}`;
    const pause = $("pause-toggle");
    setText("pause-toggle", s.paused ? "Resume" : "Pause");
    pause.setAttribute("aria-pressed", String(!!s.paused));
    $("clean").disabled = !s.paused;
    const reasons = $("reasons");
    reasons.replaceChildren(...(s.reasons || []).map((r) => el("p", {}, r)));
    reasons.hidden = !(s.reasons || []).length;
  }

  function renderAges() {
    for (const name of STREAMS) {
      const node = $(`age-${name}`);
      if (node) setText(`age-${name}`, age(node.dataset.at));
    }
  }

  function renderQueues(s) {
    setText("queue-generate", s.queues ? num(s.queues.generate) : "–");
    setText("queue-pipeline", s.queues ? num(s.queues.pipeline) : "–");
    setText("in-flight", num(s.in_flight));
    setText("broker", s.broker.ok ? "ok" : (s.broker.error || "unknown"));
    const w = s.workers;
    setText("workers", w.alive.length ? `${w.alive.length} alive: ${w.alive.join(", ")}`
      : (w.error || (w.ok === false ? "none answered" : "not checked yet")));
    const skips = Object.entries(s.skips || {}).map(([k, v]) => `${k} ${v}`).join(", ");
    setText("skips", skips || "none");
  }

  function renderConfig(s) {
    const c = s.config;
    setText("config-path", c.path);
    setText("config-fingerprint", c.fingerprint || "–");
    for (const name of STREAMS) {
      const cs = c.streams && c.streams[name];
      setText(`config-${name}`, !cs ? "–" : `every ${cs.interval_s} s, ` + (cs.min_batch_size
        ? `${cs.min_batch_size}–${cs.max_batch_size} per batch`
        : `${cs.events_per_driver} events per driver`));
    }
    const r = s.last_reload;
    setText("last-reload", r ? `${r.at} · ${r.accepted ? `applied mode ${r.mode}` : "rejected"}`
      : "none yet");
    const rej = s.last_rejection, box = $("config-error");
    box.hidden = !rej;
    setText("config-error", rej ? `Last rejected edit (${rej.at}): ${rej.problems.join("; ")}` : "");
  }

  // the outside pipeline graded live (config `grade:`): recall is a share, pct() wants percent
  function share(v) { return v == null ? null : v * 100; }
  function renderExternal(x) {
    $("external").hidden = !x;
    if (!x) return;
    const error = $("external-error");
    error.textContent = x.error || "";
    error.hidden = !x.error;
    setText("external-recall", pct(share(x.recall)));
    setText("external-precision", pct(share(x.precision)));
    const rows = [];
    for (const [name, st] of Object.entries(x.streams)) {
      const tr = row([name, pct(share(st.recall))], true);
      const lag = st.lag_s == null ? "–" : `${Math.round(st.lag_s)} s`;
      tr.appendChild(el("td", { colspan: 4 }, `${st.pending_batches} pending batches, lag ${lag}, precision ${pct(share(st.precision))}`));
      rows.push(tr);
      for (const [defect, d] of Object.entries(st.by_defect)) {
        const r = row([defect.replaceAll("_", " "), pct(share(d.recall)), num(d.caught)], true);
        r.appendChild(el("td", d.escaped ? { class: "bad" } : {}, num(d.escaped)));
        r.appendChild(el("td", d.lost ? { class: "bad" } : {}, num(d.lost)));
        r.appendChild(el("td", {}, num(d.pending)));
        rows.push(r);
      }
    }
    $("external-rows").replaceChildren(...rows);
    // only the gold named (no kept): no filter figures to show
    $("external-recall").parentElement.hidden = x.graded === false;
    $("external-table").parentElement.hidden = x.graded === false;
    renderGold(x.gold);
  }
  // the outside pipeline's gold graded like `emugen grade --gold`: verdict, causes, worst cells
  function renderGold(g) {
    $("external-gold").hidden = !g;
    if (!g) return;
    const error = $("gold-error");
    error.textContent = g.error || "";
    error.hidden = !g.error;
    const verdict = $("gold-verdict");
    setText("gold-verdict", g.verdict || "not graded");
    verdict.className = `badge ${g.verdict === "PASS" ? "status-running" : "status-degraded"}`;
    setText("gold-wrong", g.ok ? `${num(g.wrong)} of ${num(g.cells)} (${num(g.pending)} pending, allowed ${num(g.max_wrong_cells)})` : "–");
    setText("gold-policy", g.ok ? `${g.policy}, ${g.table} per ${g.window_seconds} s` : "–");
    $("gold-causes").replaceChildren(...Object.entries(g.by_cause).map(([c, n]) =>
      el("li", { "data-cause": c }, `${c.replaceAll("_", " ")}: ${num(n)} cell${n === 1 ? "" : "s"}`)));
    $("gold-worst").replaceChildren(...g.worst.map((c) => {
      const li = el("li", {}, `${(c.window_start || "no window").replace("T", " ").replace("Z", "")} ${c.key ?? ""} ${c.metric}: expected ${c.expected}, got ${c.got ?? "absent"} (${c.difference > 0 ? "+" : ""}${c.difference})`);
      const why = el("ul");
      why.replaceChildren(...c.causes.map((k) => el("li", {}, k.text)));
      li.appendChild(why);
      return li;
    }));
  }
  function renderQuality(q) {
    // 100 % of nothing is not a result: say so until a defect has been through silver
    const settled = q.injected - q.pending;
    setText("caught-pct", !q.injected ? "nothing injected yet"
      : !settled ? "nothing settled yet" : pct(q.caught_pct));
    $("caught-pct").className = `big ${!settled ? "muted" : q.ok ? "good" : "bad"}`;
    $("caught-label").hidden = !settled;
    setText("injected", num(q.injected));
    setText("caught", num(q.caught));
    setText("escaped", num(q.escaped));
    setText("false-alarms", num(q.false_alarm_total));
    setText("pending", num(q.pending));
    const alarm = $("escaped-alarm");
    alarm.replaceChildren(...q.alarms.map((a) => el("p", {}, a)));
    alarm.hidden = !q.alarms.length;
    const rows = Object.entries(q.by_defect).map(([defect, t]) => {
      const tr = row([defect.replaceAll("_", " ")], true);
      for (const name of STREAMS) {
        const bt = ((q.streams[name] || {}).by_type || {})[defect];
        tr.appendChild(el("td", { "data-defect-pct": bt ? bt.pct : 0 }, pct(bt ? bt.pct : 0)));
      }
      tr.appendChild(el("td", {}, num(t.injected)));
      tr.appendChild(el("td", {}, num(t.caught)));
      tr.appendChild(el("td", t.missed ? { class: "bad" } : {}, num(t.missed)));
      return tr;
    });
    $("defect-rows").replaceChildren(...rows);
  }

  function renderLatency(lat) {
    const layers = Object.entries(lat.layers);
    setText("latency-caption", `over the last ${lat.window.count} batches`);
    $("latency-rows").replaceChildren(...layers.map(([layer, v]) =>
      row([layer.replaceAll("_", " "), ms(v.p50), ms(v.p95), ms(v.max)], true)));
    const svg = $("latency-chart");
    const width = Math.max(240, $("latency-box").clientWidth), label = 92, barH = 10, gap = 10;
    const top = Math.max(1, ...layers.map(([, v]) => v.p95 || 0));
    const height = layers.length * (2 * barH + gap) + 4;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("height", height);
    resetSvg(svg, "p50 (dark) and p95 (light) latency per layer: " + layers.map(([l, v]) =>
      `${l.replaceAll("_", " ")} p50 ${ms(v.p50)}, p95 ${ms(v.p95)}`).join("; "));
    const scale = (width - label - 70) / top;
    layers.forEach(([layer, v], i) => {
      const y = i * (2 * barH + gap) + 2;
      svg.appendChild(svgEl("text", { x: 0, y: y + barH + 4, class: "axis" })).textContent =
        layer.replaceAll("_", " ");
      [["p50", v.p50, "p50"], ["p95", v.p95, "p95"]].forEach(([name, value, cls], k) => {
        const w = Math.max(1, (value || 0) * scale);
        svg.appendChild(svgEl("rect", { x: label, y: y + k * barH, width: w, height: barH - 1,
          class: `bar-${cls}` }, `${layer} ${name} ${ms(value)}`));
        svg.appendChild(svgEl("text", { x: label + w + 4, y: y + k * barH + barH - 2,
          class: "value" })).textContent = ms(value);
      });
    });
  }

  function renderTimeline(recent) {
    const svg = $("timeline");
    const width = Math.max(280, $("timeline-box").clientWidth), label = 120, rowH = 16;
    const rows = recent.slice(0, 20);
    const height = Math.max(rowH, rows.length * rowH) + 2;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("height", height);
    resetSvg(svg, `Stage times of the ${rows.length} most recent batches, newest first`);
    const segments = (b) => [["bronze", b.latency_ms.bronze], ["silver", b.latency_ms.silver],
      ["gold", b.latency_ms.gold]];
    const total = (b) => segments(b).reduce((sum, [, v]) => sum + (v || 0), 0);
    const top = Math.max(1, ...rows.map(total));
    const scale = (width - label - 64) / top;
    rows.forEach((b, i) => {
      const y = i * rowH + 1;
      svg.appendChild(svgEl("text", { x: 0, y: y + rowH - 4, class: "axis" })).textContent =
        `${b.stream} #${b.seq}`;
      let x = label;
      for (const [stage, v] of segments(b)) {
        if (v == null) continue;
        const w = Math.max(1, v * scale);
        svg.appendChild(svgEl("rect", { x, y: y + 2, width: w, height: rowH - 5,
          class: b.status === "failed" ? "seg-failed" : `seg-${stage}` },
          `${b.batch_id} ${stage}: ${ms(v)} (${b.records} records, ${b.status})`));
        x += w;
      }
      svg.appendChild(svgEl("text", { x: x + 4, y: y + rowH - 4, class: "value" })).textContent =
        b.status === "gold" ? ms(b.latency_ms.end_to_end) : b.status;
    });
    const flower = snap && snap.flower_url;
    document.querySelector("#recent-table .flower-col").hidden = !flower;
    $("recent-rows").replaceChildren(...rows.map((b) => {
      const tr = row([batchLink(b.batch_id), clock(b.generated_at), b.status, num(b.records),
        ms(b.latency_ms.bronze), ms(b.latency_ms.silver), ms(b.latency_ms.gold),
        ms(b.latency_ms.end_to_end)], true);
      if (flower) tr.appendChild(row([flowerLink(flower, b)]).firstChild);
      return tr;
    }));
  }
  function batchLink(id) {
    return el("a", { href: `/batches/${encodeURIComponent(id)}` }, id);
  }
  // wall-clock time in the reader's zone; the stored UTC instant in the title
  function clock(iso) {
    if (!iso) return "–";
    return el("time", { datetime: iso, title: iso }, new Date(iso).toLocaleTimeString());
  }
  function flowerLink(flower, b) {
    if (!b.task_id) return "–";
    const a = el("a", { href: `${flower}/task/${encodeURIComponent(b.task_id)}`,
      target: "_blank", rel: "noopener noreferrer" }, "Flower");
    a.appendChild(el("span", { class: "visually-hidden" }, ` task of ${b.batch_id}`));
    a.appendChild(document.createTextNode(" ↗"));
    return a;
  }

  // -- history: one SVG line chart per series set, drawn from /api/history's buckets --------
  const CHARTS = ["throughput", "latency", "defects", "backlog"];
  const VALUE = {
    throughput: (v) => `${Number(v.toFixed(1))}/min`, latency: ms, defects: pct,
    backlog: num,
  };
  let historyWindow = "15m", historySeen = null, shown = null, loading = false, again = false;

  // A snapshot names the history it goes with (history_stamp); it carries the 15 min one
  // only when that was rebuilt. Any other window, or a missed push, is fetched.
  function onHistory(s) {
    if (s.history_stamp == null || s.history_stamp === historySeen) return;
    historySeen = s.history_stamp;
    if (historyWindow === "15m" && s.history) drawHistory(s.history);
    else loadHistory();
  }
  async function loadHistory() {
    if (loading) { again = true; return; }
    loading = true;
    try {
      const r = await fetch(`/api/history?window=${historyWindow}`,
        { headers: { Accept: "application/json" } });
      if (r.ok) {
        const h = await r.json();
        if (h.window === historyWindow) drawHistory(h);
      }
    } catch (_) { /* the server is down: keep the charts, the next snapshot retries */ }
    loading = false;
    if (again) { again = false; loadHistory(); }
  }
  function drawHistory(h) {
    shown = h;
    for (const name of CHARTS) drawChart(name, h.charts[name], h);
  }
  function niceMax(values) {
    const top = Math.max(0, ...values);
    if (top <= 0) return 1;
    const step = 10 ** Math.floor(Math.log10(top));
    return [1, 2, 5, 10].map((k) => k * step).find((v) => v >= top);
  }
  const hhmm = (t) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  function chartSummary(name, chart) {
    const parts = Object.entries(chart.series).map(([series, points]) => (points.length
      ? `${series} ${VALUE[name](points[points.length - 1][1])}` : `${series} –`));
    const any = Object.values(chart.series).some((p) => p.length);
    return any ? `latest: ${parts.join(", ")}` : "no data in this window yet";
  }
  function drawChart(name, chart, h) {
    const svg = $(`chart-${name}-svg`);
    const width = Math.max(240, svg.parentNode.clientWidth), height = 150;
    const left = 48, right = 8, top = 8, bottom = 20;
    const span = h.window_s * 1000, end = Date.now() + skew, start = end - span;
    const bucket = h.bucket_s * 1000;
    const series = Object.entries(chart.series);
    const max = niceMax(series.flatMap(([, points]) => points.map((p) => p[1])));
    const x = (t) => left + Math.min(1, Math.max(0, (t + bucket / 2 - start) / span))
      * (width - left - right);
    const y = (v) => top + (1 - v / max) * (height - top - bottom);
    const summary = chartSummary(name, chart);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    while (svg.lastChild) svg.removeChild(svg.lastChild);
    svg.appendChild(svgEl("title", { id: `chart-${name}-title` })).textContent =
      `${chart.title} (${chart.unit}), last ${h.window}`;
    svg.appendChild(svgEl("desc", { id: `chart-${name}-desc` })).textContent = summary;
    svg.appendChild(svgEl("line", { x1: left, x2: width - right, y1: y(0), y2: y(0),
      class: "axis-line" }));
    svg.appendChild(svgEl("line", { x1: left, x2: width - right, y1: y(max), y2: y(max),
      class: "grid-line" }));
    const label = (text, attrs) => { svg.appendChild(svgEl("text", attrs)).textContent = text; };
    label(VALUE[name](max), { x: left - 4, y: y(max) + 4, class: "axis", "text-anchor": "end" });
    label(VALUE[name](0), { x: left - 4, y: y(0), class: "axis", "text-anchor": "end" });
    label(hhmm(start), { x: left, y: height - 4, class: "axis" });
    label("now", { x: width - right, y: height - 4, class: "axis", "text-anchor": "end" });
    series.forEach(([key, points], i) => {
      // consecutive buckets are joined; a bucket with no data breaks the line
      const d = points.map(([t, v], k) => `${k && t - points[k - 1][0] <= bucket ? "L" : "M"}`
        + `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
      svg.appendChild(svgEl("path", { d: d || "M0,0", class: `line s-${i}`,
        "data-series": key, "data-points": points.length }));
      for (const [t, v] of points.length < 40 ? points : points.slice(-1)) {
        svg.appendChild(svgEl("circle", { cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 2.5,
          class: `dot s-${i}` }, `${key} ${VALUE[name](v)} at ${hhmm(t)}`));
      }
    });
    const caption = $(`chart-${name}-summary`);
    caption.replaceChildren(...series.flatMap(([key], i) => [
      el("span", { class: `key s-${i}`, "aria-hidden": "true" }), `${key} `]),
    `· ${summary}`);
  }
  function chooseWindow(w) {
    historyWindow = w;
    for (const b of document.querySelectorAll("#history [data-window]")) {
      b.setAttribute("aria-pressed", String(b.dataset.window === w));
    }
    loadHistory();
  }

  // -- live updates: SSE first, polling while it is down ---------------------------------------
  function setLive(state) {
    setText("live", state);
    $("live").className = `badge live-${state}`;
  }
  // The server going away (a restart, a crash) is said in words, and so is its return: a
  // frozen picture must never pass for a live one.
  function reachable(ok) {
    const box = $("connection");
    if (!ok) {
      if (unreachableSince === null) unreachableSince = new Date();
      setLive("offline");
      box.textContent = `The web server is unreachable since ${unreachableSince.toLocaleTimeString()}`
        + ` — retrying every ${POLL_MS / 1000} s. The figures below are from then.`;
      box.className = "message bad";
      box.hidden = false;
    } else if (unreachableSince !== null) {
      unreachableSince = null;
      box.textContent = "Reconnected to the web server: the figures are current again.";
      box.className = "message";
      clearTimeout(reconnectedTimer);
      reconnectedTimer = setTimeout(() => { if (unreachableSince === null) box.hidden = true; },
        8000);
    }
  }
  async function poll() {
    try {
      const r = await fetch("/api/snapshot", { headers: { Accept: "application/json" } });
      if (r.ok) {
        render(await r.json());
        reachable(true);
        if (pollTimer) setLive("polling");
      } else if (r.status >= 502) reachable(false); // a proxy in front of a stopped server
    } catch (_) {
      reachable(false); // keep the last picture, try again
    }
  }
  function startPolling() {
    if (pollTimer) return;
    setLive("polling");
    poll();
    pollTimer = setInterval(poll, POLL_MS);
  }
  function stopPolling() {
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = null;
  }
  // The stream counts as live only while it delivers: a snapshot or an `alive` heartbeat
  // (sent every 5 s) within STALE_MS. An open connection that says nothing (a wedged server)
  // is not live: polling takes over and the stream is reopened.
  function fresh() {
    clearTimeout(staleTimer);
    staleTimer = setTimeout(stale, STALE_MS);
    stopPolling();
    setLive("live");
    reachable(true);
  }
  function stale() {
    startPolling();
    if (source) source.close();
    setTimeout(connect, RECONNECT_MS);
  }
  function connect() {
    if (!window.EventSource) { startPolling(); return; }
    const url = "/api/stream" + (lastId ? `?resume_from=${encodeURIComponent(lastId)}` : "");
    source = new EventSource(url);
    clearTimeout(staleTimer);
    staleTimer = setTimeout(stale, STALE_MS);
    source.addEventListener("snapshot", (e) => {
      lastId = e.lastEventId;
      fresh();
      render(JSON.parse(e.data));
    });
    source.addEventListener("alive", fresh);
    source.onerror = () => {
      startPolling();
      if (source.readyState === EventSource.CLOSED) {
        clearTimeout(staleTimer);
        source.close();
        setTimeout(connect, RECONNECT_MS);
      }
    };
  }

  // -- controls -----------------------------------------------------------------------------
  function say(text, bad) {
    const box = $("message");
    box.textContent = text;
    box.className = `message${bad ? " bad" : ""}`;
    box.hidden = !text;
  }
  async function control(path, body, retried) {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    const token = sessionStorage.getItem("emugen-token");
    if (token) headers.Authorization = `Bearer ${token}`;
    let r;
    try {
      r = await fetch(path, { method: "POST", headers, body: JSON.stringify(body || {}) });
    } catch (err) {
      say(`${path} failed: ${err}`, true);
      return null;
    }
    if (r.status === 401 && !retried) {
      const given = window.prompt("This dashboard needs its control token (EMUGEN_WEB_TOKEN):");
      if (given) {
        sessionStorage.setItem("emugen-token", given.trim());
        return control(path, body, true);
      }
    }
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      say(data.message || (typeof data.detail === "string" ? data.detail : r.statusText), true);
      return null;
    }
    say(data.message || "");
    return data;
  }
  function wire() {
    $("mode-toggle").addEventListener("click", async (e) => {
      const data = await control("/api/mode", { mode: e.currentTarget.dataset.target });
      if (data && snap) render({ ...snap, generation_mode: data.after });
    });
    $("pause-toggle").addEventListener("click", async () => {
      const paused = snap ? snap.paused : $("pause-toggle").getAttribute("aria-pressed") === "true";
      const data = await control(paused ? "/api/resume" : "/api/pause");
      if (data && snap) render({ ...snap, paused: data.paused,
        status: snap.status === "degraded" ? "degraded" : data.paused ? "paused" : "running" });
    });
    $("clean").addEventListener("click", async () => {
      if (!window.confirm("Wipe every batch, layer, quarantine row and counter? This cannot be undone.")) return;
      await control("/api/clean");
    });
    for (const b of document.querySelectorAll("#history [data-window]")) {
      b.addEventListener("click", () => chooseWindow(b.dataset.window));
    }
    window.addEventListener("resize", () => {
      if (snap) render(snap);
      if (shown) drawHistory(shown);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    wire();
    renderAges();
    setInterval(renderAges, 1000);
    connect();
  });
})();
