"use strict";
// The operator console: polls the operator API with short fetch requests (no streaming request) and
// renders every panel with DOM nodes (text only, never HTML from data). Paths are relative to the page, so
// the same file works at http://127.0.0.1:8080/ and under an API Gateway stage (https://…/prod/).

const FAST_MS = 1000; // pool, queue, groups, engine state (then the next poll: one at a time)
const SLOW_MS = 5000; // risk, equity, analytics, signals, notifications, configuration
const REQUEST_TIMEOUT_MS = 8000;

const state = {
  routes: new Set(),
  localControls: new Set(),
  selected: null,
  groups: [],
  risk: null,
  accounts: new Set(),
  // firstGroupsMs: navigation start -> pool, queue and open groups drawn; firstRenderMs: -> every panel.
  stats: { firstGroupsMs: null, firstRenderMs: null, lastRenderMs: null, renders: 0 },
  lastSlow: 0,
};
window.consoleStats = state.stats;

// ---------------------------------------------------------------- helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const $ = (id) => document.getElementById(id);
const shortId = (id) => (id ? String(id).slice(0, 8) : "");
const fmt = (value, digits = 2) =>
  value === null || value === undefined || value === ""
    ? "—"
    : Number(value).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
const money = (value) => (value === null || value === undefined ? "—" : `${fmt(value, 2)}`);
const pct = (value) => (value === null || value === undefined ? "—" : `${fmt(value, 2)} %`);
const signClass = (value) => (Number(value) > 0 ? "up" : Number(value) < 0 ? "down" : "");
const time = (iso) => (iso ? String(iso).replace("T", " ").replace(/\.\d+Z$|Z$/, "").slice(5, 19) : "—");

function table(headers, rows, empty = "nothing") {
  if (!rows.length) return el("p", { class: "muted", text: empty });
  const head = el("tr", {}, headers.map((h) => el("th", { class: h.num ? "num" : null, text: h.label || h })));
  return el("div", { class: "table-wrap" }, el("table", {}, el("thead", {}, head), el("tbody", {}, rows)));
}

const cell = (text, cls) => el("td", { class: cls || null, text: text === null || text === undefined ? "—" : text });
const num = (text, cls) => cell(text, `num ${cls || ""}`.trim());

function message(text, ok) {
  const box = $("message");
  box.hidden = false;
  box.className = ok ? "ok" : "error";
  box.textContent = text;
}

// ---------------------------------------------------------------- requests

async function call(method, path, body) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  try {
    const headers = { Accept: "application/json", ...(await Auth.headers()) };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const answer = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
      cache: "no-store",
    });
    const type = answer.headers.get("Content-Type") || "";
    const data = type.includes("json") ? await answer.json() : await answer.text();
    return { ok: answer.ok, status: answer.status, data };
  } finally {
    clearTimeout(timer);
  }
}

async function get(path) {
  const answer = await call("GET", path);
  if (answer.status === 401 || answer.status === 403) throw new AuthError();
  if (!answer.ok) throw new Error(`${path}: ${answer.status} ${reasonOf(answer.data)}`);
  return answer.data;
}

class AuthError extends Error {}

const reasonOf = (data) =>
  data && typeof data === "object" ? data.reason || data.message || data.error || JSON.stringify(data) : String(data || "");

const has = (route) => state.routes.has(route);

// ---------------------------------------------------------------- controls

function confirmThen(text, action) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.onclose = () => {
    if (dialog.returnValue === "ok") action();
  };
  dialog.showModal();
}

async function control(label, method, path, body) {
  try {
    const answer = await call(method, path, body);
    if (answer.ok) {
      const changed = answer.data && answer.data.changed === false ? " (already so: nothing changed)" : "";
      message(`${label}: done${changed}`, true);
    } else {
      message(`${label}: refused ${answer.status} ${answer.data.error || ""}: ${reasonOf(answer.data)}`, false);
    }
  } catch (error) {
    message(`${label}: ${error.message}`, false);
  }
  state.lastSlow = 0; // the next poll refreshes everything: risk actions, analytics
}

function controlButton(text, label, method, path, question, cls) {
  return el("button", {
    type: "button",
    class: `small ${cls || ""}`.trim(),
    "data-action": text.toLowerCase(),
    onclick: (event) => {
      event.stopPropagation();
      confirmThen(question, () => control(label, method, path));
    },
    text,
  });
}

// ---------------------------------------------------------------- panels

function renderEngine(engine) {
  const badge = $("engine-state");
  if (engine.paused) {
    const by = [engine.paused_by_document && "engine document", engine.paused_by_operator && "operator"].filter(Boolean);
    badge.textContent = `entries paused (${by.join(" + ")})`;
    badge.className = "badge paused";
  } else {
    badge.textContent = "running";
    badge.className = "badge ok";
  }
  $("resume").disabled = !engine.paused_by_operator;
  $("pause").disabled = Boolean(engine.paused_by_operator);
}

function renderPool(pool, groups) {
  const perAccount = new Map();
  for (const account of state.accounts) perAccount.set(account, 0);
  for (const group of groups) {
    const account = group.account || group.exchange;
    perAccount.set(account, (perAccount.get(account) || 0) + 1);
  }
  // A pool per account when the API reports one (pool.accounts); else the shared pool and each account's
  // open groups.
  const accounts = Array.isArray(pool.accounts)
    ? pool.accounts.map((a) => [a.account || a.name, a.open, a.max_open_groups, a.free])
    : [...perAccount.entries()].map(([account, open]) => [account, open, "shared", "—"]);
  const rows = accounts.map(([account, open, max, free]) =>
    el("tr", { "data-account": account }, cell(account), num(open), num(max), num(free)));
  $("pool").replaceChildren(
    el("p", {}, el("b", { text: `${pool.open} / ${pool.max_open_groups}` }), ` slots used, ${pool.free} free`),
    table(["account", { label: "open", num: true }, { label: "max", num: true }, { label: "free", num: true }], rows,
      "no account"),
  );
}

function renderQueue(queue) {
  const rows = queue.map((entry) =>
    el("tr", { "data-queue": entry.id },
      num(entry.rank), cell(entry.symbol), cell(entry.exchange), num(entry.timeframe), cell(entry.side),
      num(fmt(entry.entry_price, 8)), num(entry.replacement_count), cell(time(entry.queued_at)),
      cell(entry.reason + (entry.pyramid_continuation ? " (pyramid of an open group)" : ""), "muted"),
      el("td", {},
        controlButton("Promote", `promote ${shortId(entry.id)}`, "POST", `queue/${entry.id}/promote`,
          `Promote ${entry.symbol} ${entry.side} now (its orders are placed)?`),
        " ",
        controlButton("Remove", `remove ${shortId(entry.id)}`, "DELETE", `queue/${entry.id}`,
          `Remove ${entry.symbol} ${entry.side} from the queue?`, "danger"))));
  $("queue").replaceChildren(table(
    [{ label: "#", num: true }, "symbol", "account", { label: "tf", num: true }, "side", { label: "entry", num: true },
      { label: "repl.", num: true }, "queued", "why it waits", ""], rows, "queue empty"));
}

function protectionText(protection) {
  if (!protection) return "—";
  if (typeof protection !== "object") return String(protection);
  return Object.entries(protection)
    .filter(([, value]) => value !== null && value !== undefined && value !== false)
    .map(([name, value]) => `${name} ${typeof value === "object" ? JSON.stringify(value) : value}`)
    .join(", ") || "—";
}

function renderGroups(groups) {
  const rows = groups.map((g) =>
    el("tr", { "data-group": g.id, class: state.selected === g.id ? "selected" : null },
      el("td", {}, el("button", { type: "button", class: "link", "data-open": g.id, text: shortId(g.id),
        onclick: () => select(g.id) })),
      cell(g.symbol), cell(g.account || g.exchange), num(g.timeframe), cell(g.side), cell(g.status),
      num(g.pyramid_count), num(`${g.filled_legs}/${g.total_legs}`), cell(g.tp_mode),
      num(fmt(g.avg_entry, 8)), num(money(g.invested_usd)),
      num(money(g.unrealized_pnl_usd), signClass(g.unrealized_pnl_usd)),
      num(pct(g.unrealized_pnl_percent), signClass(g.unrealized_pnl_percent)),
      cell(protectionText(g.protection), "muted"),
      cell([g.risk_blocked && "blocked", g.risk_skip_once && "skip once", g.risk_timer_started_at && "timer"]
        .filter(Boolean).join(", ") || "—", "muted"),
      el("td", {},
        controlButton("Close", `close ${shortId(g.id)}`, "POST", `groups/${g.id}/close`,
          `Close ${shortId(g.id)} ${g.symbol} ${g.side} in full at market?`, "danger"), " ",
        g.risk_blocked
          ? controlButton("Unblock", `unblock ${shortId(g.id)}`, "POST", `groups/${g.id}/unblock`,
            `Let the risk engine consider ${shortId(g.id)} again?`)
          : controlButton("Block", `block ${shortId(g.id)}`, "POST", `groups/${g.id}/block`,
            `Exclude ${shortId(g.id)} from the risk engine?`), " ",
        controlButton("Skip", `skip ${shortId(g.id)}`, "POST", `groups/${g.id}/skip`,
          `Skip ${shortId(g.id)} once as the risk engine's loser?`))));
  $("groups").replaceChildren(table(
    ["id", "symbol", "account", { label: "tf", num: true }, "side", "status", { label: "pyr.", num: true },
      { label: "legs", num: true }, "TP", { label: "avg entry", num: true }, { label: "invested $", num: true },
      { label: "unreal. $", num: true }, { label: "unreal. %", num: true }, "protection", "risk", ""],
    rows, "no open group"));
}

function renderRisk(risk) {
  const timers = (risk.timers || []).map((t) =>
    el("li", {}, `${shortId(t.group_id || t.id)} ${t.symbol || ""} `,
      el("span", { class: "muted", text: t.expires_at ? `expires ${time(t.expires_at)}` : JSON.stringify(t) })));
  const plan = (risk.plan || []).map((step) =>
    el("tr", {}, cell(step.role), cell(shortId(step.group_id)), num(fmt(step.qty, 8)), num(fmt(step.price, 8)),
      num(money(step.loss_usd ?? step.realized_usd)), num(money(step.fee_usd))));
  const actions = (risk.actions || []).slice(0, 10).map((a) =>
    el("li", {}, el("span", { class: "muted", text: `${time(a.at)} ` }), `${a.action} ${shortId(a.group_id)} `,
      el("span", { class: "muted", text: a.reason || "" })));
  const summary = risk.summary || risk.plan_summary;
  $("risk").replaceChildren(...[
    el("h3", { text: "timers" }), timers.length ? el("ul", { class: "plain" }, timers) : el("p", { class: "muted", text: "no timer running" }),
    el("h3", { text: "current plan" }),
    summary ? el("p", { class: "muted", text: `${summary.actionable ? "would act" : "would not act"}: ${summary.reason || ""}` }) : null,
    table(["role", "group", { label: "qty", num: true }, { label: "price", num: true }, { label: "$", num: true },
      { label: "fee $", num: true }], plan, "no loser with an expired timer"),
    el("h3", { text: "recent actions" }), actions.length ? el("ul", { class: "plain" }, actions) : el("p", { class: "muted", text: "none" }),
  ].filter(Boolean));
}

function renderChart(points, valueOf, label) {
  if (points.length < 2) return el("p", { class: "muted", text: `${label}: not enough points yet` });
  const W = 800, H = 180, P = 24;
  const values = points.map(valueOf);
  const min = Math.min(...values), max = Math.max(...values);
  const span = max - min || 1;
  const x = (i) => P + (i * (W - 2 * P)) / (points.length - 1);
  const y = (v) => H - P - ((v - min) * (H - 2 * P)) / span;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text) node.textContent = text;
    svg.append(node);
  };
  add("line", { class: "base", x1: P, x2: W - P, y1: y(values[0]), y2: y(values[0]) });
  add("polyline", { class: "line", points: values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ") });
  add("text", { x: 2, y: 12 }, `${label}  max ${fmt(max)}`);
  add("text", { x: 2, y: H - 4 }, `min ${fmt(min)}`);
  add("text", { x: W - 2 - 120, y: H - 4 }, `last ${fmt(values[values.length - 1])}`);
  return svg;
}

function figure(label, value, cls) {
  return el("div", { class: "figure" }, el("b", { class: cls || null, text: value }), el("span", { text: label }));
}

function renderAnalytics(a) {
  const totals = (rows, key) => rows.map((r) =>
    el("tr", {}, cell(r[key]), num(r.trades), num(pct(r.win_rate)), num(money(r.realized_usd), signClass(r.realized_usd))));
  const trades = (list) => list.map((t) =>
    el("li", {}, el("button", { type: "button", class: "link", text: shortId(t.id), onclick: () => select(t.id) }),
      ` ${t.symbol} ${t.side} `, el("span", { class: signClass(t.realized_pnl_usd), text: money(t.realized_pnl_usd) })));
  const sides = Object.entries(a.long_short || {}).map(([side, r]) => ({ side, ...r }));
  $("analytics").replaceChildren(
    el("div", { class: "figures", id: "analytics-figures" },
      figure("trades", String(a.trades)), figure("win rate", pct(a.win_rate)),
      figure("realised $", money(a.realized_usd), signClass(a.realized_usd)),
      figure("avg win $", money(a.avg_win_usd), "up"), figure("avg loss $", money(a.avg_loss_usd), "down"),
      figure("profit factor", fmt(a.profit_factor, 4)), figure("max drawdown $", money(a.max_drawdown_usd)),
      figure("Sharpe (daily)", fmt(a.sharpe, 4)), figure("Sortino (daily)", fmt(a.sortino, 4))),
    el("div", { class: "columns" },
      el("div", {}, el("h3", { text: "by symbol" }), table(["symbol", { label: "trades", num: true },
        { label: "win rate", num: true }, { label: "realised $", num: true }], totals(a.by_symbol || [], "symbol"))),
      el("div", {}, el("h3", { text: "by timeframe" }), table(["tf", { label: "trades", num: true },
        { label: "win rate", num: true }, { label: "realised $", num: true }], totals(a.by_timeframe || [], "timeframe"))),
      el("div", {}, el("h3", { text: "long vs short" }), table(["side", { label: "trades", num: true },
        { label: "win rate", num: true }, { label: "realised $", num: true }], totals(sides, "side"))),
      el("div", {}, el("h3", { text: "best" }), el("ul", { class: "plain" }, trades(a.best || [])),
        el("h3", { text: "worst" }), el("ul", { class: "plain" }, trades(a.worst || [])))),
    el("p", { class: "muted", text: `${a.from} → ${a.to}, ${a.days} days; returns on ${money(a.base_equity_usd)} USD base equity` }),
  );
}

function renderFeed(target, items, empty) {
  const rows = items.map((item) => {
    const at = item.at || item.received_at || item.created_at || item.time;
    const text = item.text || item.message || item.reason || item.summary || "";
    const what = [item.kind || item.intent, item.outcome || item.channel].filter(Boolean).join(" ");
    return el("li", {}, el("span", { class: "muted", text: `${time(at)} ` }), `${what} `,
      item.group_id ? el("button", { type: "button", class: "link", text: shortId(item.group_id),
        onclick: () => select(item.group_id) }) : null,
      ` ${typeof text === "object" ? JSON.stringify(text) : text}`);
  });
  $(target).replaceChildren(rows.length ? el("ul", { class: "plain" }, rows) : el("p", { class: "muted", text: empty }));
}

function renderConfig(config) {
  const problems = (config.problems || []).map((p) => el("li", { class: "problem", text: p.text || JSON.stringify(p) }));
  const documents = (config.documents || []).map((d) =>
    el("details", {}, el("summary", {}, `${d.name} `, el("span", { class: "muted", text: `version ${d.version ?? "—"}` })),
      el("pre", { text: JSON.stringify(d.values, null, 2) })));
  $("config").replaceChildren(
    problems.length ? el("ul", { class: "plain" }, problems) : el("p", { class: "muted", text: "no configuration problem" }),
    ...documents);
  const accounts = config.documents && config.documents.find((d) => d.name === "engine");
  if (accounts && accounts.values && accounts.values.accounts) {
    for (const name of Object.keys(accounts.values.accounts)) state.accounts.add(name.toLowerCase());
    const select = $("account");
    const known = new Set([...select.options].map((o) => o.value));
    for (const name of state.accounts) if (!known.has(name)) select.append(el("option", { value: name, text: name }));
  }
}

// ---------------------------------------------------------------- group detail

async function select(groupId) {
  state.selected = groupId;
  $("detail-panel").hidden = false;
  $("detail-title").textContent = shortId(groupId);
  await refreshDetail();
  $("detail-panel").scrollIntoView({ block: "nearest" });
}

async function history(groupId, detail) {
  if (has("GET /events")) {
    const answer = await get(`events?group_id=${encodeURIComponent(groupId)}&limit=100`);
    return answer.events || [];
  }
  // Before the events table: the signals audit, the risk actions and the orders' own times.
  const items = [];
  if (has("GET /signals")) {
    const answer = await get(`signals?group_id=${encodeURIComponent(groupId)}&limit=50`);
    items.push(...(answer.signals || []).map((s) => ({ ...s, kind: "signal" })));
  }
  for (const action of (state.risk && state.risk.actions) || []) {
    if (action.group_id === groupId || (action.related_group_ids || []).includes(groupId)) {
      items.push({ at: action.at, kind: "risk", outcome: action.action, reason: action.reason });
    }
  }
  for (const order of detail.orders || []) {
    items.push({ at: order.created_at, kind: "order", outcome: `${order.purpose} ${order.side} created`, reason: order.id });
    if (order.updated_at !== order.created_at) {
      items.push({ at: order.updated_at, kind: "order", outcome: order.status, reason: order.reason || order.id });
    }
  }
  return items.sort((a, b) => String(b.at || b.received_at).localeCompare(String(a.at || a.received_at)));
}

async function refreshDetail() {
  const groupId = state.selected;
  if (!groupId) return;
  const detail = await get(`groups/${encodeURIComponent(groupId)}`);
  const g = detail.group;
  const legs = (detail.orders || []).map((o) =>
    el("tr", { "data-order": o.id }, cell(o.purpose), num(o.pyramid), num(o.leg), cell(o.side), cell(o.type),
      num(fmt(o.price, 8)), num(fmt(o.trigger_price, 8)), num(fmt(o.amount, 8)), num(fmt(o.filled, 8)),
      num(fmt(o.average, 8)), cell(o.status), cell(o.reason || "", "muted")));
  const pyramids = (detail.pyramids || []).map((p) =>
    el("tr", {}, num(p.index), num(fmt(p.entry_price, 8)), num(money(p.capital_usd)), num(p.leg_count), cell(time(p.created_at))));
  const events = await history(groupId, detail);
  const container = el("div", {},
    el("div", { class: "figures" },
      figure("symbol", `${g.symbol} ${g.side}`), figure("status", g.status, g.status === "closed" ? "muted" : ""),
      figure("account", g.account || g.exchange), figure("quantity", fmt(g.quantity, 8)),
      figure("avg entry", fmt(g.avg_entry, 8)), figure("invested $", money(g.invested_usd)),
      figure("unrealised $", money(g.unrealized_pnl_usd), signClass(g.unrealized_pnl_usd)),
      figure("realised $", money(g.realized_pnl_usd), signClass(g.realized_pnl_usd)),
      figure("TP mode", g.tp_mode),
      figure("close", g.close_reason ? [g.close_reason, g.close_note].filter((v, i, all) => v && all.indexOf(v) === i).join(": ") : "—")),
    el("h3", { text: "protections" }), el("p", { class: "muted", text: protectionText(g.protection || detail.protection) }),
    el("h3", { text: "pyramids" }),
    table([{ label: "#", num: true }, { label: "entry", num: true }, { label: "capital $", num: true },
      { label: "legs", num: true }, "created"], pyramids),
    el("h3", { text: "orders (legs and take-profits)" }),
    table(["purpose", { label: "pyr.", num: true }, { label: "leg", num: true }, "side", "type",
      { label: "price", num: true }, { label: "trigger", num: true }, { label: "amount", num: true },
      { label: "filled", num: true }, { label: "avg", num: true }, "status", "reason"], legs, "no order"),
    el("h3", { text: "history" }));
  const box = el("div", { id: "detail-history" });
  container.append(box);
  $("detail").replaceChildren(container);
  renderFeed("detail-history", events.slice(0, 60), "no recorded event");
}

// ---------------------------------------------------------------- polling

function setStatus(text, bad) {
  const node = $("updated");
  node.textContent = text;
  node.className = bad ? "warn" : "muted";
}

async function refreshFast() {
  const started = performance.now();
  const [engine, pool, queue, groups] = await Promise.all([get("engine"), get("pool"), get("queue"), get("groups")]);
  state.routes = new Set(engine.routes || []);
  state.groups = groups.groups || [];
  renderEngine(engine);
  renderGroups(state.groups);
  renderPool(pool, state.groups);
  renderQueue(queue.queue || []);
  if (state.stats.firstGroupsMs === null) state.stats.firstGroupsMs = Math.round(performance.now());
  if (state.selected) await refreshDetail();
  return started;
}

async function refreshSlow() {
  const period = $("period").value;
  const account = $("account").value;
  const query = `period=${period}${account ? `&account=${encodeURIComponent(account)}` : ""}`;
  // The risk view marks and plans every open group: the slow cycle (it is the costliest read).
  const jobs = [get("risk"), get("equity"), get(`analytics?${query}`), get("config")];
  const [risk, equity, analytics, config] = await Promise.all(jobs);
  state.risk = risk;
  renderRisk(risk);
  $("equity").replaceChildren(renderChart(equity.points || [], (p) => Number(p.equity_usd), "equity USD"));
  renderAnalytics(analytics);
  renderConfig(config);
  if (has("GET /events")) {
    const answer = await get("events?kind=signal&limit=30");
    renderFeed("signals", (answer.events || []).filter((e) => !e.outcome || e.outcome === "rejected"), "no refused signal");
  } else if (has("GET /signals")) {
    const answer = await get("signals?outcome=rejected&limit=30");
    renderFeed("signals", answer.signals || [], "no refused signal");
  }
  if (state.localControls.has("notifications")) {
    const answer = await get("_local/notifications");
    renderFeed("notifications", answer.notifications || answer.messages || [], "no notification");
  } else if (has("GET /events")) {
    const answer = await get("events?kind=notification&limit=30");
    renderFeed("notifications", answer.events || [], "no notification");
  } else {
    $("notifications").replaceChildren(el("p", { class: "muted", text: "notifications are not available here" }));
  }
}

async function tick() {
  try {
    const started = await refreshFast();
    if (Date.now() - state.lastSlow >= SLOW_MS) {
      await refreshSlow();
      state.lastSlow = Date.now();
    }
    const now = performance.now();
    state.stats.lastRenderMs = Math.round(now - started);
    if (state.stats.firstRenderMs === null) state.stats.firstRenderMs = Math.round(now);
    state.stats.renders += 1;
    document.body.dataset.rendered = String(state.stats.renders);
    setStatus(`updated ${new Date().toLocaleTimeString()}`, false);
  } catch (error) {
    if (error instanceof AuthError && Auth.mode !== "none") {
      showSignIn();
      return;
    }
    setStatus(`cannot reach the engine: ${error.message}`, true);
  }
  setTimeout(tick, FAST_MS);
}

function showSignIn() {
  $("app").hidden = true;
  $("signin").hidden = false;
}

async function exportCsv() {
  const account = $("account").value;
  const answer = await fetch(`groups?status=closed&format=csv${account ? `&account=${encodeURIComponent(account)}` : ""}`,
    { headers: await Auth.headers() });
  if (!answer.ok) {
    message(`export: refused ${answer.status}`, false);
    return;
  }
  const link = el("a", { href: URL.createObjectURL(await answer.blob()), download: "closed-groups.csv" });
  document.body.append(link);
  link.click();
  link.remove();
}

async function start() {
  // Under an API Gateway stage the page must be `/<stage>/` (not `/<stage>`): relative API paths and the
  // sign-in's registered redirect URL both assume the trailing slash.
  if (!location.pathname.endsWith("/")) {
    location.replace(`${location.pathname}/${location.search}`);
    return;
  }
  $("pause").addEventListener("click", () =>
    confirmThen("Pause new entries and pyramids? Exits, take-profits and the risk engine keep working.",
      () => control("pause", "POST", "engine/pause", { note: "console" })));
  $("resume").addEventListener("click", () =>
    confirmThen("Resume new entries (the operator's pause is cleared)?", () => control("resume", "POST", "engine/resume")));
  $("risk-run").addEventListener("click", () =>
    confirmThen("Run the risk engine now, ignoring its interval?", () => control("risk run", "POST", "risk/run")));
  $("detail-close").addEventListener("click", () => {
    state.selected = null;
    $("detail-panel").hidden = true;
  });
  $("period").addEventListener("change", () => { state.lastSlow = 0; });
  $("account").addEventListener("change", () => { state.lastSlow = 0; });
  $("export-csv").addEventListener("click", () => exportCsv().catch((e) => message(`export: ${e.message}`, false)));
  $("sign-in").addEventListener("click", () => Auth.signIn());
  $("sign-out").addEventListener("click", () => Auth.signOut());
  try {
    if (!(await Auth.ready())) {
      showSignIn();
      return;
    }
  } catch (error) {
    message(error.message, false);
    showSignIn();
    return;
  }
  $("sign-out").hidden = Auth.mode === "none";
  if (Auth.mode === "none") {
    try {
      const info = await get("_local/info");
      state.localControls = new Set(info.controls || []);
    } catch {
      state.localControls = new Set();
    }
  }
  tick();
}

start();
