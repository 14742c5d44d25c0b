// threesigma console: every page drawn from the public JSON API with the session cookie.
// No framework, no build step, no inline script or style (the page's CSP forbids them);
// all text goes in with textContent, never as HTML.

const API = "/api/v1";
const REFRESH_MS = 10_000;
const main = document.getElementById("main");

// ---------------------------------------------------------------------------- DOM helpers

function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  setAttributes(element, attrs);
  element.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  setAttributes(element, attrs);
  element.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return element;
}

function setAttributes(element, attrs) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
}

function badge(text) {
  return h("span", { class: `badge ${text}` }, text);
}

function link(href, text) {
  return h("a", { href }, text);
}

function fixed(value, digits = 1) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  return value.toFixed(digits);
}

function when(iso) {
  if (!iso) return "–";
  return h("time", { datetime: iso, title: iso }, new Date(iso).toLocaleString());
}

function age(iso) {
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min`;
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} d`;
}

function table(caption, headers, rows) {
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, headers.map(([label, cls]) => h("th", { scope: "col", class: cls }, label)))),
      rows));
}

function errorBox(message) {
  return h("p", { class: "error", role: "alert" }, message);
}

/**
 * Runs `work` once at a time for `button`: a second press while it runs does nothing. The
 * button is marked `aria-disabled`, not `disabled`, so keyboard focus stays on it.
 */
async function whileBusy(button, work) {
  if (button.getAttribute("aria-disabled") === "true") return;
  button.setAttribute("aria-disabled", "true");
  try {
    await work();
  } finally {
    button.removeAttribute("aria-disabled");
  }
}

// ------------------------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls the API; a 401 (no session, or it ended) goes to sign-in and comes back here. */
async function api(path, { method = "GET", body } = {}) {
  const response = await fetch(API + path, {
    method,
    credentials: "same-origin",
    headers: body === undefined ? { Accept: "application/json" } : { Accept: "application/json", "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && !path.startsWith("/auth/session")) {
    toSignIn(true);
    throw new ApiError(401, "Your session has ended.");
  }
  if (response.status === 204) return null;
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) {
    const retry = response.headers.get("Retry-After");
    const message = payload.message || payload.error || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, retry && !/retry/i.test(message) ? `${message} (retry in ${retry} s)` : message);
  }
  return payload;
}

function toSignIn(expired) {
  const next = location.pathname + location.search + location.hash;
  location.assign(`/sign-in?next=${encodeURIComponent(next)}${expired ? "&expired=1" : ""}`);
}

/**
 * A `next` that stays on this site. Judged as the browser will read it (the URL parser
 * drops tabs and newlines and turns `\` into `/`, so `/\t/evil` would be `//evil`): only a
 * URL of this origin is followed, and only its path, query and fragment.
 */
function safeNext(value) {
  if (!value || !value.startsWith("/")) return "/incidents";
  let url;
  try {
    url = new URL(value, location.origin);
  } catch {
    return "/incidents";
  }
  if (url.origin !== location.origin || url.pathname.startsWith("//")) return "/incidents";
  return url.pathname + url.search + url.hash;
}

// ------------------------------------------------------------------------ time ranges

const RANGES = [["1h", "Last hour", 3600], ["6h", "Last 6 hours", 6 * 3600], ["24h", "Last 24 hours", 86400],
  ["7d", "Last 7 days", 7 * 86400], ["30d", "Last 30 days", 30 * 86400], ["", "Any time", 0]];

/** A `range` from the URL if it is one of RANGES, else `fallback`. */
function knownRange(value, fallback) {
  return value !== null && RANGES.some(([name]) => name === value) ? value : fallback;
}

function rangeSince(key) {
  const range = RANGES.find(([name]) => name === key);
  return range && range[2] ? new Date(Date.now() - range[2] * 1000).toISOString() : null;
}

// The words box: `attr.key=value` chunks become attribute filters, the rest is `q`.
function searchQuery(text, params) {
  const words = [];
  const filters = {};
  for (const chunk of text.trim().split(/\s+/)) {
    const attribute = chunk.match(/^attr\.([^=]+)=(.*)$/);
    if (attribute) filters[`attr.${attribute[1]}`] = attribute[2];
    else if (chunk) words.push(chunk);
  }
  return query({ ...params, q: words.join(" "), ...filters });
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

function select(name, label, options, current) {
  return h("label", {}, label,
    h("select", { name },
      options.map(([value, text]) => h("option", { value, selected: value === current }, text))));
}

function field(name, label, value, attrs = {}) {
  return h("label", {}, label, h("input", { name, value: value || "", ...attrs }));
}

// ------------------------------------------------------------------------------ charts

const WIDTH = 760;
const HEIGHT = 260;
const PAD = { left: 44, right: 48, top: 22, bottom: 28 };

/**
 * The per-minute errors (bars) and totals (line, right axis) of a series, with the band
 * from the baseline mean to the detection threshold of each judged minute, and markers.
 */
function chart(series, markers, title) {
  const points = series.minutes;
  const figure = h("figure", { class: "chart" });
  if (points.length === 0) {
    figure.append(h("p", {}, "No minutes in this span."));
    return figure;
  }
  const start = new Date(points[0].minute).getTime();
  const span = Math.max(1, points.length);
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const step = plotWidth / span;
  const top = Math.max(1, ...points.map((p) => Math.max(p.errors, p.threshold ?? 0, p.baseline_mean ?? 0))) * 1.1;
  const totalTop = Math.max(1, ...points.map((p) => p.total)) * 1.1;
  const x = (index) => PAD.left + index * step;
  const xAt = (iso) => PAD.left + ((new Date(iso).getTime() - start) / 60000) * step;
  const y = (value) => PAD.top + plotHeight - (value / top) * plotHeight;
  const yTotal = (value) => PAD.top + plotHeight - (value / totalTop) * plotHeight;

  const svg = s("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-labelledby": "chart-title chart-desc" });
  const peak = points.reduce((best, p) => (p.errors > best.errors ? p : best), points[0]);
  const judged = points.filter((p) => p.threshold !== null);
  const lastJudged = judged[judged.length - 1];
  svg.append(s("title", { id: "chart-title" }, title));
  svg.append(s("desc", { id: "chart-desc" },
    `${points.length} minutes from ${new Date(points[0].minute).toLocaleString()}. Peak ${peak.errors} errors at ` +
    `${new Date(peak.minute).toLocaleTimeString()}.` +
    (lastJudged ? ` Latest baseline ${fixed(lastJudged.baseline_mean)} errors per minute, threshold ${lastJudged.threshold}.` : " Not judged yet (too little history).")));

  // The band: baseline mean to threshold, minute by minute, for judged minutes (one polygon per run).
  const runs = [];
  let run = [];
  points.forEach((p, index) => {
    if (p.threshold === null || p.baseline_mean === null) {
      if (run.length) runs.push(run);
      run = [];
    } else run.push([index, p]);
  });
  if (run.length) runs.push(run);
  for (const part of runs) {
    const upper = part.flatMap(([index, p]) => [[x(index), y(p.threshold)], [x(index + 1), y(p.threshold)]]);
    const lower = part.flatMap(([index, p]) => [[x(index), y(p.baseline_mean)], [x(index + 1), y(p.baseline_mean)]]).reverse();
    svg.append(s("polygon", { class: "band", points: [...upper, ...lower].map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(" ") }));
    svg.append(s("polyline", { class: "baseline", points: part.flatMap(([index, p]) => [`${x(index).toFixed(1)},${y(p.baseline_mean).toFixed(1)}`, `${x(index + 1).toFixed(1)},${y(p.baseline_mean).toFixed(1)}`]).join(" ") }));
    svg.append(s("polyline", { class: "threshold", points: part.flatMap(([index, p]) => [`${x(index).toFixed(1)},${y(p.threshold).toFixed(1)}`, `${x(index + 1).toFixed(1)},${y(p.threshold).toFixed(1)}`]).join(" ") }));
  }
  // Errors: a bar per minute.
  points.forEach((p, index) => {
    if (p.errors === 0) return;
    const classes = ["bar-errors", p.anomalous ? "anomalous" : "", p.partial ? "partial" : ""].join(" ").trim();
    svg.append(s("rect", {
      class: classes, x: (x(index) + step * 0.15).toFixed(1), y: y(p.errors).toFixed(1),
      width: Math.max(1, step * 0.7).toFixed(1), height: (PAD.top + plotHeight - y(p.errors)).toFixed(1),
    }, s("title", {}, `${new Date(p.minute).toLocaleTimeString()}: ${p.errors} errors of ${p.total} events` +
      (p.threshold !== null ? `; baseline ${fixed(p.baseline_mean)}, threshold ${p.threshold}` : "") + (p.partial ? " (minute in progress)" : ""))));
  });
  // Totals, on the right axis.
  svg.append(s("polyline", { class: "totals", points: points.map((p, index) => `${(x(index) + step / 2).toFixed(1)},${yTotal(p.total).toFixed(1)}`).join(" ") }));
  // Axes and labels.
  const bottom = PAD.top + plotHeight;
  svg.append(s("line", { class: "axis", x1: PAD.left, y1: bottom, x2: WIDTH - PAD.right, y2: bottom }));
  svg.append(s("line", { class: "axis", x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: bottom }));
  svg.append(s("text", { x: PAD.left - 6, y: y(0) + 4, "text-anchor": "end" }, "0"));
  svg.append(s("text", { x: PAD.left - 6, y: PAD.top + 4, "text-anchor": "end" }, String(Math.round(top))));
  svg.append(s("text", { x: 4, y: 12 }, "errors/min"));
  svg.append(s("text", { x: WIDTH - PAD.right + 6, y: PAD.top + 4 }, String(Math.round(totalTop))));
  svg.append(s("text", { x: WIDTH - 4, y: 12, "text-anchor": "end" }, "events/min"));
  for (const index of [0, Math.floor(points.length / 2), points.length - 1]) {
    const label = new Date(points[index].minute).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    svg.append(s("text", { x: x(index) + step / 2, y: HEIGHT - 8, "text-anchor": "middle" }, label));
  }
  // Markers.
  // Labels stagger downwards so markers close together stay readable, and sit left of
  // their line in the right half.
  markers.forEach((marker, index) => {
    const at = xAt(marker.at);
    if (at < PAD.left || at > WIDTH - PAD.right) return;
    const right = at > PAD.left + plotWidth / 2;
    svg.append(s("line", { class: `marker ${marker.kind}`, x1: at, y1: PAD.top, x2: at, y2: bottom }));
    svg.append(s("text", { class: "marker-label", x: right ? at - 4 : at + 4, y: PAD.top + 12 + index * 13, "text-anchor": right ? "end" : "start" },
      `${marker.kind} ${new Date(marker.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`));
  });
  figure.append(svg);
  figure.append(h("figcaption", {},
    h("div", { class: "legend" },
      h("span", {}, h("span", { class: "key errors" }), "errors per minute"),
      h("span", {}, h("span", { class: "key totals" }), "all events per minute (right axis)"),
      h("span", {}, h("span", { class: "key baseline" }), "baseline mean"),
      h("span", {}, h("span", { class: "key band" }), `up to the detection threshold (${series.algorithm}, ${series.settings} settings)`))));
  return figure;
}

function sparkline(values, label) {
  const top = Math.max(1, ...values);
  const points = values.map((value, index) => `${((index / Math.max(1, values.length - 1)) * 118 + 1).toFixed(1)},${(27 - (value / top) * 25).toFixed(1)}`).join(" ");
  return s("svg", { class: "spark", viewBox: "0 0 120 28", role: "img", "aria-label": label },
    s("polyline", { points }));
}

// ---------------------------------------------------------------------- the session bar

let session = null;

function renderWho() {
  const who = document.getElementById("who");
  const nav = document.getElementById("nav");
  who.replaceChildren();
  if (!session) return;
  nav.hidden = false;
  for (const anchor of nav.querySelectorAll("a")) {
    if (location.pathname.startsWith(anchor.getAttribute("href"))) anchor.setAttribute("aria-current", "page");
  }
  who.append(
    h("span", {}, `${session.subject} (${session.role ?? "token"})`),
    h("button", { type: "button", class: "secondary", onclick: signOut }, "Sign out"));
}

async function signOut() {
  try {
    await api("/auth/session", { method: "DELETE" });
  } finally {
    location.assign("/sign-in?signed_out=1");
  }
}

// ----------------------------------------------------------------------------- sign in

function signInPage() {
  document.title = "Sign in · threesigma";
  const params = new URLSearchParams(location.search);

  const message = h("div", { id: "sign-in-message", role: "status" });
  if (params.get("expired")) message.append(h("p", { class: "notice" }, "Your session has ended. Sign in again to continue."));
  if (params.get("signed_out")) message.append(h("p", { class: "notice" }, "You are signed out."));
  const form = h("form", { class: "signin", method: "post", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    message,
    field("email", "Email", "", { type: "email", autocomplete: "username", required: true, autofocus: true }),
    field("password", "Password", "", { type: "password", autocomplete: "current-password", required: true }),
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const button = form.querySelector("button");
    button.disabled = true;
    message.replaceChildren();
    try {
      await api("/auth/session", { method: "POST", body: { email: data.get("email"), password: data.get("password") } });
      location.assign(safeNext(params.get("next")));
    } catch (error) {
      message.append(errorBox(error.status === 401 ? "Wrong email or password." : error.message));
      button.disabled = false;
      form.querySelector("input[name=password]").focus();
    }
  });
  main.replaceChildren(form);
}

// --------------------------------------------------------------------------- incidents

function incidentRow(incident) {
  return h("tr", {},
    h("td", {}, link(`/incidents/${incident.id}`, incident.service)),
    h("td", { class: "wide" }, incident.signal.replace("_", " ")),
    h("td", {}, badge(incident.severity)),
    h("td", { class: "num" }, `${incident.current_count} vs ${fixed(incident.baseline.mean)}`),
    h("td", { class: "num" }, fixed(incident.current_z)),
    h("td", { class: "num" }, h("time", { datetime: incident.opened_at, title: incident.opened_at }, age(incident.opened_at))),
    h("td", {}, badge(incident.status)));
}

const INCIDENT_HEADERS = [["Service"], ["Signal", "wide"], ["Severity"], ["Errors vs baseline", "num"], ["z", "num"], ["Age", "num"], ["Status"]];

/**
 * Incidents in the console's order: with no status filter, active ones (open and
 * acknowledged) first, then resolved ones, each newest first; keyset pages of the API.
 */
class IncidentFeed {
  constructor(filter) {
    this.filter = filter;
    this.phases = filter.status ? [filter.status] : ["active", "resolved"];
    this.reset();
  }
  reset() {
    this.phase = 0;
    this.cursor = null;
  }
  get done() {
    return this.phase >= this.phases.length;
  }
  async next(limit = 50) {
    const rows = [];
    while (!this.done && rows.length < limit) {
      const page = await api(`/incidents${query({ ...this.filter, status: this.phases[this.phase], limit: limit - rows.length, cursor: this.cursor })}`);
      rows.push(...page.data);
      if (page.next_cursor) this.cursor = page.next_cursor;
      else {
        this.phase += 1;
        this.cursor = null;
      }
    }
    return rows;
  }
}

async function incidentsPage() {
  document.title = "Incidents · threesigma";
  const params = new URLSearchParams(location.search);
  const current = Object.fromEntries(["status", "service", "severity"].map((name) => [name, params.get(name) ?? ""]));
  current.range = knownRange(params.get("range"), "");
  // "Opened within" is relative to now: recomputed at every load and refresh.
  const filter = () => ({ status: current.status, service: current.service, severity: current.severity, since: rangeSince(current.range) });
  const form = h("form", { class: "filters", method: "get", action: "/incidents", "aria-label": "Filter incidents" },
    select("status", "Status", [["", "Active, then resolved"], ["open", "Open"], ["acknowledged", "Acknowledged"], ["resolved", "Resolved"]], current.status),
    field("service", "Service", current.service, { type: "search" }),
    select("severity", "Severity", [["", "Any"], ["warning", "Warning"], ["critical", "Critical"]], current.severity),
    select("range", "Opened", RANGES.map(([value, text]) => [value, text]), current.range),
    h("button", { type: "submit" }, "Apply"));
  const body = h("tbody", {});
  // Not a live region: a screen reader should not announce every refresh.
  const status = h("p", { class: "status-line" });
  const more = h("button", { type: "button", class: "secondary more" }, "Load more");
  main.replaceChildren(h("h1", {}, "Incidents"), form, table("Incidents", INCIDENT_HEADERS, body), more, status);

  let feed = new IncidentFeed(filter());
  let shown = 0;
  let loading = false;
  const load = () => whileBusy(more, async () => {
    loading = true;
    try {
      const rows = await feed.next();
      body.append(...rows.map(incidentRow));
      shown += rows.length;
      if (shown === 0) body.append(h("tr", {}, h("td", { colspan: 7 }, "No incidents match.")));
      status.textContent = `${shown} incident${shown === 1 ? "" : "s"} shown · updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      status.replaceChildren(errorBox(error.message));
    }
    more.hidden = feed.done;
    loading = false;
  });
  more.addEventListener("click", load);
  await load();

  // Refresh what is shown, in place: the filter and the scroll position stay.
  const refresh = async () => {
    // Not while "Load more" is running: both would append the same rows.
    if (document.hidden || loading) return;
    const fresh = new IncidentFeed(filter());
    try {
      const rows = await fresh.next(Math.max(50, shown));
      feed = fresh;
      shown = rows.length;
      // Keyboard focus stays on the link it was on, if that incident is still listed.
      const focused = body.contains(document.activeElement) ? document.activeElement.getAttribute("href") : null;
      body.replaceChildren(...rows.map(incidentRow));
      if (focused) body.querySelector(`a[href="${CSS.escape(focused)}"]`)?.focus();
      if (shown === 0) body.append(h("tr", {}, h("td", { colspan: 7 }, "No incidents match.")));
      more.hidden = feed.done;
      status.textContent = `${shown} incident${shown === 1 ? "" : "s"} shown · updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      if (error.status !== 401) status.replaceChildren(errorBox(error.message));
    }
  };
  setInterval(refresh, REFRESH_MS);
}

// ---------------------------------------------------------------------------- one incident

function seriesSpan(incident) {
  const from = new Date(new Date(incident.first_minute).getTime() - 30 * 60_000);
  const end = incident.resolved_at ? new Date(new Date(incident.resolved_at).getTime() + 60_000) : new Date();
  // The API answers at most a day: a longer incident shows its last day.
  const since = end - from > 86_400_000 ? new Date(end.getTime() - 86_340_000) : from;
  return { since: since.toISOString(), until: end.toISOString() };
}

function logRow(log, withService = true) {
  return h("tr", {},
    h("td", { class: "num" }, when(log.ts)),
    withService ? h("td", {}, log.service) : null,
    h("td", {}, badge(log.level)),
    h("td", { class: "message" }, log.message));
}

/** A paged table of logs from `path` (an API listing) with a "Load more" button. */
function logTable(caption, path, withService = true) {
  const body = h("tbody", {});
  const more = h("button", { type: "button", class: "secondary more" }, "Load more");
  const status = h("p", { class: "status-line", role: "status" });
  let cursor = null;
  let shown = 0;
  const load = () => whileBusy(more, async () => {
    try {
      const separator = path.includes("?") ? "&" : "?";
      const page = await api(`${path}${separator}limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      body.append(...page.data.map((log) => logRow(log, withService)));
      shown += page.data.length;
      cursor = page.next_cursor;
      more.hidden = !cursor;
      // A search page that ran out of time may hold fewer rows than asked, even none, and
      // still have a cursor: the rest of the range is searched by Load more.
      status.textContent = shown === 0
        ? (cursor ? "Nothing found yet in the part searched; Load more searches further back." : "No logs.")
        : `${shown} log${shown === 1 ? "" : "s"} shown`;
    } catch (error) {
      status.replaceChildren(errorBox(error.message));
    }
  });
  more.addEventListener("click", load);
  const headers = [["Time", "num"], ...(withService ? [["Service"]] : []), ["Level"], ["Message"]];
  const element = h("div", {}, table(caption, headers, body), more, status);
  return { element, load };
}

async function incidentPage(id, reasonText = "") {
  document.title = `Incident ${id} · threesigma`;
  let detail;
  try {
    detail = await api(`/incidents/${encodeURIComponent(id)}`);
  } catch (error) {
    main.replaceChildren(h("h1", {}, `Incident ${id}`), errorBox(error.message));
    return;
  }
  const span = seriesSpan(detail);
  const cut = new Date(span.since) > new Date(new Date(detail.first_minute).getTime() - 30 * 60_000);
  const series = await api(`/services/${encodeURIComponent(detail.service)}/series${query(span)}`).catch((error) => error);
  const markers = [{ kind: "opened", at: detail.opened_at }];
  if (detail.acknowledged_at) markers.push({ kind: "acknowledged", at: detail.acknowledged_at });
  if (detail.resolved_at) markers.push({ kind: "resolved", at: detail.resolved_at });
  document.title = `${detail.title} · threesigma`;

  const evidence = [
    ["Status", badge(detail.status)], ["Severity", badge(detail.severity)], ["Signal", detail.signal.replace("_", " ")],
    ["Errors (opening)", detail.opening ? String(detail.opening.count) : String(detail.peak_count)],
    ["Errors (now)", String(detail.current_count)], ["Peak errors", String(detail.peak_count)],
    ["Baseline mean", `${fixed(detail.baseline.mean, 2)} /min`], ["Baseline sd", fixed(detail.baseline.stddev, 2)],
    ["Baseline minutes", String(detail.baseline.minutes)],
    ["z (now)", fixed(detail.current_z)], ["Peak z", fixed(detail.peak_z)],
    ["p", detail.p_value === null ? "–" : detail.p_value.toExponential(2)],
    ["Threshold", detail.thresholds.firing_count === null || detail.thresholds.firing_count === undefined ? "–" : `${detail.thresholds.firing_count} errors`],
    ["Algorithm", detail.thresholds.algorithm.replace("_", " ")],
    ["Learned dispersion", detail.thresholds.dispersion == null ? "– (Poisson unless the baseline shows more)" : `${fixed(detail.thresholds.dispersion, 2)} × the mean`],
    ["Daily rhythm", detail.thresholds.rhythm_rise == null ? "–" : `baseline raised ×${fixed(detail.thresholds.rhythm_rise, 2)}`],
    ["Opened", when(detail.opened_at)], ["Reopened", String(detail.reopened_count)],
  ];
  const page = h("div", {},
    h("p", {}, link("/incidents", "← Incidents")),
    h("h1", {}, detail.title),
    h("p", {}, "Service ", link(`/services/${encodeURIComponent(detail.service)}`, detail.service)),
    series instanceof Error ? errorBox(`The chart could not be drawn: ${series.message}`)
      : chart(series, markers, `Errors per minute of ${detail.service} around incident ${detail.id}`),
    cut ? h("p", { class: "status-line" }, "The chart shows the last 24 hours; the incident opened before them.") : null,
    h("h2", {}, "Evidence"),
    h("dl", { class: "evidence" }, evidence.map(([term, value]) => h("div", {}, h("dt", {}, term), h("dd", {}, value)))),
    h("h2", {}, "What changed"),
    explanationView(detail));

  if (session?.can_operate && detail.status !== "resolved") {
    const result = h("div", { role: "status" });
    const reason = h("input", { name: "reason", type: "text", maxlength: 500, autocomplete: "off", value: reasonText });
    let acting = false;
    const act = async (action) => {
      if (acting) return;
      acting = true;
      for (const button of page.querySelectorAll(".actions button")) button.setAttribute("aria-disabled", "true");
      try {
        await api(`/incidents/${detail.id}/${action}`, { method: "POST", body: { reason: reason.value } });
        await incidentPage(id);
        document.getElementById("action-result")?.focus();
      } catch (error) {
        if (error.status === 409) {
          // Someone else acted first: show the incident as it is now, and say so (the reason
          // typed stays, for a Resolve that still applies).
          await incidentPage(id, reason.value);
          document.getElementById("action-result")?.replaceChildren(errorBox(error.message));
          document.getElementById("action-result")?.focus();
          return;
        }
        result.replaceChildren(errorBox(error.message));
        for (const button of page.querySelectorAll(".actions button")) button.removeAttribute("aria-disabled");
        acting = false;
      }
    };
    page.append(h("form", { class: "actions", "aria-label": "Act on this incident", onsubmit: (event) => event.preventDefault() },
      h("label", {}, "Reason (optional)", reason),
      detail.status === "open" ? h("button", { type: "button", onclick: () => act("acknowledge") }, "Acknowledge") : null,
      h("button", { type: "button", class: "secondary", onclick: () => act("resolve") }, "Resolve")), result);
  }
  page.append(h("h2", {}, "Timeline"),
    h("ol", { class: "timeline" }, detail.timeline.map((entry) => h("li", {},
      when(entry.at), " ", h("strong", {}, entry.kind), ` by ${entry.actor}`,
      entry.reason ? ` — ${entry.reason}` : "",
      entry.z !== null ? ` (z ${fixed(entry.z)}, ${entry.count} errors)` : ""))));
  const logs = logTable(`Error logs of incident ${detail.id}`, `/incidents/${detail.id}/logs`, false);
  page.append(h("h2", {}, "Logs"), logs.element);
  const done = h("p", { id: "action-result", tabindex: "-1", class: "status-line" },
    detail.status === "resolved" ? `Resolved${detail.resolved_by ? ` by ${detail.resolved_by}` : ""}.`
      : detail.status === "acknowledged" ? `Acknowledged${detail.acknowledged_by ? ` by ${detail.acknowledged_by}` : ""}.` : "");
  page.insertBefore(done, page.children[3]);
  main.replaceChildren(page);
  await logs.load();
}

/** The templates and attribute values over-represented in the incident's window. */
function explanationView(detail) {
  const explanation = detail.explanation;
  if (!explanation) {
    return h("p", { class: "status-line" }, detail.status === "resolved"
      ? "No explanation was recorded for this incident."
      : "Not explained yet: the detector explains an incident within a cycle of opening it.");
  }
  const lift = (value) => value === null ? "–" : `×${fixed(value, value < 10 ? 1 : 0)}`;
  const flags = (item) => [item.new ? badge("new") : null, item.over_represented ? badge("rising") : null];
  const side = (s) => `${s.lines} line${s.lines === 1 ? "" : "s"}${s.sampled < s.lines ? ` (${s.sampled} sampled)` : ""}`;
  const note = h("p", { class: "status-line" },
    `ERROR+ lines from ${new Date(explanation.window.from).toLocaleTimeString()} to ${new Date(explanation.window.until).toLocaleTimeString()}: ${side(explanation.window)}; `,
    `baseline, the ${Math.round((new Date(explanation.baseline.until) - new Date(explanation.baseline.from)) / 60_000)} minutes before: ${side(explanation.baseline)}. `,
    `Counts are estimates when lines were sampled.`,
    explanation.attribute_baseline === "all_levels" ? " Attribute values are compared with all of the baseline's lines (it had few errors)." : "",
    explanation.attribute_baseline === "none" ? " The baseline had no lines: attribute values are those not every line has." : "");
  const patterns = explanation.patterns.length === 0 ? h("p", { class: "status-line" }, "No error lines in the window.")
    : table("Message templates of the incident window against the baseline",
      [["Template"], ["Window", "num"], ["Baseline", "num"], ["Lift", "num"], ["Flags"], ["Example", "wide"]],
      h("tbody", {}, explanation.patterns.map((p) => h("tr", {},
        h("td", {}, h("code", {}, p.template),
          h("div", { class: "example" }, "e.g. ", h("samp", {}, p.example_message))),
        h("td", { class: "num" }, String(p.window_count)),
        h("td", { class: "num" }, String(p.baseline_count)),
        h("td", { class: "num" }, lift(p.lift)),
        h("td", {}, flags(p)),
        h("td", { class: "wide" }, when(p.example_ts))))));
  const attributes = explanation.attributes.length === 0
    ? h("p", { class: "status-line" }, "No attribute value stands out.")
    : table("Attribute values over-represented in the incident window",
      [["Attribute"], ["Window", "num"], ["Baseline", "num"], ["Lift", "num"], ["Flags"]],
      h("tbody", {}, explanation.attributes.map((a) => h("tr", {},
        h("td", {}, h("code", {}, `${a.key}=${a.value}`)),
        h("td", { class: "num" }, String(a.window_count)),
        h("td", { class: "num" }, String(a.baseline_count)),
        h("td", { class: "num" }, lift(a.lift)),
        h("td", {}, a.new ? badge("new") : null)))));
  return h("div", { class: "explanation" }, note, h("h3", {}, "Message templates"), patterns,
    h("h3", {}, "Attribute values"), attributes);
}

// ---------------------------------------------------------------------------- services

async function servicesPage() {
  document.title = "Services · threesigma";
  const body = h("tbody", {});
  const more = h("button", { type: "button", class: "secondary more" }, "Load more");
  const status = h("p", { class: "status-line", role: "status" });
  main.replaceChildren(h("h1", {}, "Services"),
    h("p", { class: "status-line" }, "Every service with events in the last hour or an active incident."),
    table("Services", [["Service"], ["Errors, last hour"], ["Errors", "num"], ["Events", "num"], ["z", "num"], ["Incident"]], body),
    more, status);
  let cursor = null;
  let shown = 0;
  const load = () => whileBusy(more, async () => {
    try {
      const page = await api(`/services${query({ cursor })}`);
      for (const service of page.data) {
        const peak = Math.max(...service.errors_per_minute);
        body.append(h("tr", {},
          h("td", {}, link(`/services/${encodeURIComponent(service.service)}`, service.service)),
          h("td", {}, sparkline(service.errors_per_minute, `Errors per minute of ${service.service} over the last hour, peak ${peak}`)),
          h("td", { class: "num" }, String(service.errors_last_hour)),
          h("td", { class: "num" }, String(service.events_last_hour)),
          h("td", { class: "num" }, service.verdict ? fixed(service.verdict.z) : "warming up"),
          h("td", {}, service.active_incidents.length
            ? service.active_incidents.map((incident) => link(`/incidents/${incident}`, `#${incident}`))
            : "–")));
      }
      shown += page.data.length;
      cursor = page.next_cursor;
      more.hidden = !cursor;
      status.textContent = shown === 0 ? "No active services." : `${shown} service${shown === 1 ? "" : "s"}`;
    } catch (error) {
      status.replaceChildren(errorBox(error.message));
    }
  });
  more.addEventListener("click", load);
  await load();
}

async function servicePage(name) {
  document.title = `${name} · threesigma`;
  const params = new URLSearchParams(location.search);
  const range = ["1h", "6h", "24h"].includes(params.get("range")) ? params.get("range") : "1h";
  const hours = { "1h": 1, "6h": 6, "24h": 24 }[range];
  const now = new Date();
  const span = { since: new Date(now.getTime() - hours * 3_600_000 + 60_000).toISOString(), until: now.toISOString() };
  const form = h("form", { class: "filters", method: "get", "aria-label": "Chart span" },
    select("range", "Span", [["1h", "Last hour"], ["6h", "Last 6 hours"], ["24h", "Last 24 hours"]], range),
    h("button", { type: "submit" }, "Show"));
  const [series, incidents] = await Promise.all([
    api(`/services/${encodeURIComponent(name)}/series${query(span)}`).catch((error) => error),
    api(`/incidents${query({ service: name, limit: 10 })}`).catch((error) => error),
  ]);
  const markers = incidents instanceof Error ? [] : incidents.data.map((incident) => ({ kind: "opened", at: incident.opened_at }));
  const logs = logTable(`Recent logs of ${name}`, `/logs${query({ service: name })}`, false);
  main.replaceChildren(
    h("p", {}, link("/services", "← Services")),
    h("h1", {}, name), form,
    series instanceof Error ? errorBox(series.message) : chart(series, markers, `Errors per minute of ${name}`),
    h("h2", {}, "Recent incidents"),
    incidents instanceof Error ? errorBox(incidents.message)
      : table(`Incidents of ${name}`, INCIDENT_HEADERS, h("tbody", {}, incidents.data.length ? incidents.data.map(incidentRow) : h("tr", {}, h("td", { colspan: 7 }, "None.")))),
    h("h2", {}, "Recent logs"), logs.element);
  await logs.load();
}

// -------------------------------------------------------------------------------- logs

async function logsPage() {
  document.title = "Logs · threesigma";
  const params = new URLSearchParams(location.search);
  const current = Object.fromEntries(["service", "level", "q"].map((name) => [name, params.get(name) ?? ""]));
  // The last hour unless the URL says otherwise ("Any time" is `range=`).
  current.range = knownRange(params.get("range"), "1h");
  const form = h("form", { class: "filters", method: "get", action: "/logs", role: "search", "aria-label": "Search logs" },
    field("q", "Words", current.q, { type: "search", placeholder: "card declined \"exact phrase\" attr.host=web-3" }),
    field("service", "Service", current.service, { type: "search" }),
    select("level", "Level at least", [["", "Any"], ["trace", "Trace"], ["debug", "Debug"], ["info", "Info"], ["warn", "Warn"], ["error", "Error"], ["fatal", "Fatal"]], current.level),
    select("range", "Time", RANGES.map(([value, text]) => [value, text]), current.range),
    h("button", { type: "submit" }, "Search"));
  // "Any time" searches the whole retention (the API alone would search the last 24 hours).
  const since = rangeSince(current.range) ?? (current.q.trim() ? "1970-01-01T00:00:00Z" : null);
  const logs = logTable("Logs", `/logs${searchQuery(current.q, { service: current.service, level: current.level, since })}`);
  main.replaceChildren(h("h1", {}, "Logs"), form, logs.element);
  await logs.load();
}

// ------------------------------------------------------------------------------ router

async function route() {
  const path = location.pathname;
  if (path === "/sign-in") {
    signInPage();
    return;
  }
  try {
    session = await api("/auth/session");
  } catch (error) {
    if (error.status === 401 || error.status === 403) toSignIn(error.status === 401);
    else main.replaceChildren(errorBox(error.message));
    return;
  }
  renderWho();
  let match;
  if (path === "/incidents") await incidentsPage();
  else if ((match = path.match(/^\/incidents\/(\d+)$/))) await incidentPage(match[1]);
  else if (path === "/services") await servicesPage();
  else if ((match = path.match(/^\/services\/([^/]+)$/))) {
    let name = null;
    try {
      name = decodeURIComponent(match[1]);
    } catch {
      main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, "That service name is not valid in a link."));
    }
    if (name !== null) await servicePage(name);
  }
  else if (path === "/logs") await logsPage();
  else main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, link("/incidents", "Incidents")));
}

route().catch((error) => main.replaceChildren(errorBox(error.message)));
