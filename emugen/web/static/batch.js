// emugen batch page: one batch's spec and stages, its records page by page beside the truth,
// the gold rows it changed and a replay button. Plain fetch, no framework, no build step.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const batchId = document.body.dataset.batchId;
  const api = `/api/batches/${encodeURIComponent(batchId)}`;
  const query = new URLSearchParams(location.search);
  const view = {
    page: Math.max(1, parseInt(query.get("page") || "1", 10) || 1),
    size: parseInt(query.get("size") || "50", 10) || 50,
    problems: query.get("problems") === "only" ? "only" : "all",
    pages: 1,
  };

  const ms = (v) => (v == null ? "–" : v < 1000 ? `${Math.round(v)} ms`
    : `${(v / 1000).toFixed(2)} s`);
  const num = (v) => (v == null ? "–" : Number(v).toLocaleString("en"));
  function el(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text != null) node.textContent = text;
    return node;
  }
  function row(cells) {
    const tr = el("tr");
    cells.forEach((c, i) => {
      const cell = c instanceof Node && /^T[DH]$/.test(c.nodeName) ? c
        : el(i === 0 ? "th" : "td", i === 0 ? { scope: "row" } : {});
      if (cell !== c) { if (c instanceof Node) cell.appendChild(c); else cell.textContent = c; }
      tr.appendChild(cell);
    });
    return tr;
  }
  function batchLink(id) { return el("a", { href: `/batches/${encodeURIComponent(id)}` }, id); }
  function say(text, bad) {
    const box = $("message");
    box.textContent = text;
    box.className = `message${bad ? " bad" : ""}`;
    box.hidden = !text;
  }
  function fail(text) {
    const box = $("error");
    box.replaceChildren(el("p", {}, text));
    box.hidden = false;
  }
  async function getJson(url) {
    let r;
    try {
      r = await fetch(url, { headers: { Accept: "application/json" } });
    } catch (err) {
      fail(`${url} failed: ${err}`);
      return null;
    }
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      fail(data.message || (typeof data.detail === "string" ? data.detail : `${r.status} ${r.statusText}`));
      return null;
    }
    return data;
  }

  // -- the batch ----------------------------------------------------------------------------
  function neighbours() {
    const m = /^(companies|events)-(\d+)$/.exec(batchId);
    if (!m) return;
    const seq = parseInt(m[2], 10);
    const id = (n) => `${m[1]}-${String(n).padStart(m[2].length, "0")}`;
    if (seq > 1) { $("prev-batch").href = `/batches/${id(seq - 1)}`; $("prev-batch").hidden = false; }
    $("next-batch").href = `/batches/${id(seq + 1)}`;
    $("next-batch").hidden = false;
  }
  function renderSummary(b) {
    const dl = $("summary");
    dl.replaceChildren();
    const r = b.reconcile;
    const facts = [
      ["batch", batchLink(b.batch_id)], ["stream", b.stream], ["seq", b.seq], ["mode", b.mode],
      ["status", b.status], ["worker", b.worker || "–"], ["scheduled", b.scheduled_at],
      ["records", num(b.records)], ["silver kept", num(b.valid)],
      ["quarantined", num(b.quarantined)], ["injected", num(b.injected)],
      ["caught", `${num(r.caught)} of ${num(r.injected)} (${r.caught_pct} %)`],
      ["escaped", num(r.missed)],
      ["false alarms", num(Object.values(r.false_alarms).reduce((a, n) => a + n, 0))],
    ];
    if (b.error) facts.push(["error", b.error]);
    if (b.note) facts.push(["note", b.note]);
    for (const [k, v] of facts) {
      dl.appendChild(el("dt", {}, k));
      const dd = dl.appendChild(el("dd", { id: `fact-${k.replace(/ /g, "-")}` }));
      if (v instanceof Node) dd.appendChild(v); else dd.textContent = v;
    }
    const stages = [["tick", b.scheduled_at, null, null], ["generate", b.generated_at, null, b.work_ms.generate],
      ["bronze", b.bronze_at, b.latency_ms.bronze, b.work_ms.bronze],
      ["silver", b.silver_at, b.latency_ms.silver, b.work_ms.silver],
      ["gold", b.gold_at, b.latency_ms.gold, b.work_ms.gold],
      ["tick → gold", null, b.latency_ms.end_to_end, null]];
    $("stages-rows").replaceChildren(...stages.map(([s, at, lat, work]) =>
      row([s, at ? at.replace("T", " ").replace(/\+00:00$/, " UTC") : "–", ms(lat), ms(work)])));
    $("spec").textContent = JSON.stringify(b.spec, null, 2);
  }

  // -- records ------------------------------------------------------------------------------
  function truthCell(t) {
    const td = el("td", { class: "truth" });
    if (!t) { td.textContent = "clean"; td.className = "truth muted"; return td; }
    td.appendChild(el("b", {}, t.defect));
    if (t.field) td.appendChild(document.createTextNode(` in ${t.field}`));
    td.appendChild(el("br"));
    td.appendChild(document.createTextNode(`${t.original ?? "(absent)"} → ${t.injected ?? "(removed)"}`));
    td.appendChild(el("br"));
    td.appendChild(el("span", { class: "muted" }, `expects reason ${t.expected_reason}`));
    return td;
  }
  function wentCell(w) {
    const td = el("td", { class: "went" });
    if (w.to === "silver") td.textContent = `silver ${w.id}`;
    else if (w.to === "quarantine") {
      td.appendChild(el("b", {}, `quarantine: ${w.reason}`));
      if (w.field) td.appendChild(document.createTextNode(` (${w.field})`));
      td.appendChild(el("br"));
      td.appendChild(el("span", { class: "muted" }, w.detail));
    } else td.textContent = "nowhere (yet)";
    return td;
  }
  // the arrival ledger's mark: how late and where it belongs, or the original it copies
  function originalHref(batch, rowNo) {
    const page = Math.floor(rowNo / view.size) + 1;
    return `/batches/${encodeURIComponent(batch)}?page=${page}&size=${view.size}#row-${rowNo}`;
  }
  function arrivalCell(a) {
    const td = el("td", { class: "arrival" });
    if (!a) { td.textContent = "on time"; td.className = "arrival muted"; return td; }
    td.appendChild(el("b", { class: `mark mark-${a.condition}` }, a.condition));
    if (a.condition === "late") {
      td.appendChild(document.createTextNode(` by ${ms(a.lateness_ms)}`));
      td.appendChild(el("br"));
      const w = (a.belongs_to_window || "").replace("T", " ").replace(/\+00:00$/, " UTC");
      td.appendChild(el("span", { class: "muted" }, `belongs to window ${w}`));
    } else if (a.original_batch_id) {
      td.appendChild(document.createTextNode(" copy of "));
      td.appendChild(el("a", { href: originalHref(a.original_batch_id, a.original_row_no),
        class: "original" }, `${a.original_batch_id} row ${a.original_row_no}`));
    }
    return td;
  }
  function showTarget() {
    const target = location.hash && document.getElementById(location.hash.slice(1));
    if (!target) return;
    target.classList.add("target");
    target.scrollIntoView({ block: "center" });
  }
  async function loadRecords() {
    const params = new URLSearchParams({ page: view.page, size: view.size, problems: view.problems });
    history.replaceState(null, "", `?${params}${location.hash}`);
    const data = await getJson(`${api}/records?${params}`);
    if (!data) return;
    view.pages = data.pages;
    $("records-rows").replaceChildren(...data.items.map((r) => {
      const tr = row([String(r.row_no), el("td", { class: "payload" }, r.payload),
        truthCell(r.truth), wentCell(r.went),
        el("td", { class: `verdict v-${r.verdict}` }, r.verdict.replace("_", " ")),
        arrivalCell(r.arrival)]);
      tr.id = `row-${r.row_no}`;
      tr.dataset.verdict = r.verdict;
      if (r.arrival) tr.dataset.arrival = r.arrival.condition;
      return tr;
    }));
    showTarget();
    const what = data.problems === "only" ? "rows with a problem" : "rows";
    $("page-label").textContent = `page ${data.page} of ${data.pages} (${num(data.total)} ${what})`;
    $("records-caption").textContent = `records of ${batchId}, ${what}, page ${data.page} of ${data.pages}`;
    $("prev-page").disabled = data.page <= 1;
    $("next-page").disabled = data.page >= data.pages;
  }

  // -- gold ---------------------------------------------------------------------------------
  function renderGold(g) {
    const events = g.table === "gold_company_window";
    const figures = events ? ["events", "delivered"] : ["companies_onboarded"];
    const head = el("tr");
    head.appendChild(el("th", { scope: "col" }, "window start"));
    head.appendChild(el("th", { scope: "col" }, events ? "company" : "region"));
    for (const f of figures) head.appendChild(el("th", { scope: "col" }, `${f.replace("_", " ")}: without → now (+ this batch)`));
    if (events) head.appendChild(el("th", { scope: "col" }, "active drivers now"));
    head.appendChild(el("th", { scope: "col" }, "window revisions"));
    $("gold-head").replaceChildren(head);
    $("gold-rows").replaceChildren(...g.items.map((i) => row([
      i.window_start.replace("T", " ").replace(/\+00:00$/, ""), events ? i.company_id : i.region,
      ...figures.map((f) => `${num(i[f].without_batch)} → ${num(i[f].now)} (+${num(i[f].this_batch)})`),
      ...(events ? [num(i.active_drivers.now)] : []),
      el("td", { class: `revisions${i.revisions ? " revised" : ""}` }, num(i.revisions))])));
    const shown = g.items.length < g.total ? `, the first ${g.items.length} of ${num(g.total)}` : "";
    $("gold-caption").textContent = `${g.table} rows (${g.window_seconds} s windows) this batch's silver rows fall in${shown}${g.pending ? "; the batch is not in gold yet" : ""}`;
  }

  // the outside pipeline's gold (config `grade:`) in this batch's windows
  function renderAnswer(a) {
    $("answer").hidden = !a;
    if (!a) return;
    const badge = $("answer-verdict");
    badge.textContent = a.verdict;
    badge.className = `badge ${a.verdict === "PASS" ? "good" : "bad"}`;
    $("answer-summary").textContent = `${a.verdict} overall under ${a.policy}; ${num(a.wrong)} wrong ${a.table} cell${a.wrong === 1 ? "" : "s"} (${a.window_seconds} s windows) in the windows this batch touched`;
    $("answer-causes").replaceChildren(...Object.entries(a.by_cause).map(([c, n]) =>
      el("li", { "data-cause": c }, `${c.replaceAll("_", " ")}: ${num(n)}`)));
    $("answer-rows").replaceChildren(...a.wrong_cells.map((c) => row([
      (c.window_start || "no window").replace("T", " ").replace("Z", ""), c.key ?? "–", c.metric,
      c.expected, c.got == null ? "absent" : String(c.got), c.causes.map((k) => k.text).join("; ")])));
  }

  // -- replay -------------------------------------------------------------------------------
  async function replay(retried) {
    const out = $("replay-verdict");
    out.textContent = "replaying…";
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem("emugen-token");
    if (token) headers.Authorization = `Bearer ${token}`;
    let r;
    try {
      r = await fetch(`${api}/replay`, { method: "POST", headers });
    } catch (err) {
      out.textContent = `replay failed: ${err}`;
      return;
    }
    if (r.status === 401 && !retried) {
      const given = window.prompt("This dashboard needs its control token (EMUGEN_WEB_TOKEN):");
      if (given) { sessionStorage.setItem("emugen-token", given.trim()); return replay(true); }
    }
    const data = await r.json().catch(() => ({}));
    out.className = `verdict-box ${r.ok && data.identical ? "good" : "bad"}`;
    out.textContent = r.ok ? data.message : (data.message || data.detail || r.statusText);
  }

  function wire() {
    $("only-problems").checked = view.problems === "only";
    $("size").value = String(view.size);
    $("only-problems").addEventListener("change", (e) => {
      view.problems = e.currentTarget.checked ? "only" : "all";
      view.page = 1;
      loadRecords();
    });
    $("size").addEventListener("change", (e) => {
      view.size = parseInt(e.currentTarget.value, 10);
      view.page = 1;
      loadRecords();
    });
    $("prev-page").addEventListener("click", () => { if (view.page > 1) { view.page -= 1; loadRecords(); } });
    $("next-page").addEventListener("click", () => { if (view.page < view.pages) { view.page += 1; loadRecords(); } });
    $("records-form").addEventListener("submit", (e) => e.preventDefault());
    $("replay").addEventListener("click", () => replay(false));
  }

  async function start() {
    neighbours();
    wire();
    if (document.body.dataset.found !== "true") return;
    const detail = await getJson(api);
    if (detail) renderSummary(detail);
    await loadRecords();
    const gold = await getJson(`${api}/gold`);
    if (gold) { renderGold(gold); renderAnswer(gold.answer); }
  }
  start();
})();
