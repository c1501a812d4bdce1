// The bridge's web console. Everything shown comes from the REST API called
// with the signed-in token; every value is placed with textContent (never
// parsed as HTML), so data such as an error message holding <script> is
// shown as text.
"use strict";

const TEXT = {
  es: {
    skip: "Saltar al contenido", nav_jobs: "Trabajos", nav_new: "Nueva extracción",
    nav_events: "Eventos de sincronización", sign_out: "Salir", language: "Idioma",
    sign_in_title: "Iniciar sesión", token: "Token de la API", sign_in: "Entrar",
    bad_token: "El token no es válido.", jobs: "Trabajos", state: "Estado", all: "Todos",
    filter: "Filtrar", job: "Trabajo", owner: "Dueño", created: "Creado", started: "Iniciado",
    finished: "Terminado", rows: "Filas", bytes: "Bytes", files: "Archivos", query: "Consulta",
    error: "Error", discrepancy: "Discrepancia", more: "Más", cancel: "Cancelar trabajo",
    confirm_cancel: "¿Cancelar este trabajo? Lo que esté a medias no se publica.",
    none: "Nada por ahora.", back: "Volver", country: "País", queries: "Consultas",
    destination: "Destino", overwrite: "Reemplazar salida existente", preview: "Ver parámetros",
    start: "Iniciar extracción", parameters: "Parámetros", started_job: "Trabajo creado",
    events: "Eventos de sincronización", status: "Estado", operation: "Operación",
    source: "Origen", target: "Destino", expected: "Filas esperadas", affected: "Filas afectadas",
    requested_by: "Pedido por", attempts: "Intentos", claimed_by: "Tomado por",
    completed_at: "Completado", event: "Evento", loading: "Cargando…",
    queries_path: "Carpeta de consultas", manifest: "Manifiesto", file: "Archivo", nav_audit: "Auditoría", nav_overview: "Resumen",
    audit_user: "Usuario", audit_resource: "Objeto", audit_action: "Acción", audit_event_type: "Tipo",
    audit_outcome: "Resultado", audit_since: "Desde", audit_until: "Hasta", search: "Buscar",
    time: "Hora", missing_right: "Permiso faltante", detail: "Detalle", ip: "IP",
    more_lines: "Hay más líneas: acote la búsqueda.", chart_label: "Filas por día, extraídas y sincronizadas",
    extracted: "Extraídas", synced: "Sincronizadas", health: "Estado de los sistemas", down: "caído",
    failures_24h: "Fallas en las últimas 24 h", id: "Id", kind: "Tipo", rows_per_day: "Filas por día",
    rows_per_table: "Filas por tabla", day: "Día", table: "Tabla",
  },
  en: {
    skip: "Skip to content", nav_jobs: "Jobs", nav_new: "New extraction",
    nav_events: "Sync events", sign_out: "Sign out", language: "Language",
    sign_in_title: "Sign in", token: "API token", sign_in: "Sign in",
    bad_token: "The token is not valid.", jobs: "Jobs", state: "State", all: "All",
    filter: "Filter", job: "Job", owner: "Owner", created: "Created", started: "Started",
    finished: "Finished", rows: "Rows", bytes: "Bytes", files: "Files", query: "Query",
    error: "Error", discrepancy: "Discrepancy", more: "More", cancel: "Cancel job",
    confirm_cancel: "Cancel this job? Nothing half-written is published.",
    none: "Nothing yet.", back: "Back", country: "Country", queries: "Queries",
    destination: "Destination", overwrite: "Replace existing output", preview: "Show parameters",
    start: "Start extraction", parameters: "Parameters", started_job: "Job created",
    events: "Sync events", status: "Status", operation: "Operation",
    source: "Source", target: "Target", expected: "Rows expected", affected: "Rows affected",
    requested_by: "Requested by", attempts: "Attempts", claimed_by: "Claimed by",
    completed_at: "Completed", event: "Event", loading: "Loading…",
    queries_path: "Queries folder", manifest: "Manifest", file: "File", nav_audit: "Audit", nav_overview: "At a glance",
    audit_user: "User", audit_resource: "Object", audit_action: "Action", audit_event_type: "Kind",
    audit_outcome: "Outcome", audit_since: "Since", audit_until: "Until", search: "Search",
    time: "Time", missing_right: "Missing right", detail: "Detail", ip: "IP",
    more_lines: "More lines match: narrow the search.", chart_label: "Rows per day, extracted and synced",
    extracted: "Extracted", synced: "Synced", health: "Systems", down: "down",
    failures_24h: "Failures in the last 24 h", id: "Id", kind: "Kind", rows_per_day: "Rows per day",
    rows_per_table: "Rows per table", day: "Day", table: "Table",
  },
};

const JOB_STATES = ["queued", "running", "succeeded", "failed", "cancelled", "interrupted"];
const EVENT_STATES = ["pending", "processing", "completed", "failed"];
let lang = sessionStorage.getItem("lang") || ((navigator.language || "es").startsWith("en") ? "en" : "es");
let poll = null;

const t = (k) => (TEXT[lang] && TEXT[lang][k]) || TEXT.en[k] || k;
const $ = (id) => document.getElementById(id);

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function translate() {
  document.documentElement.lang = lang;
  for (const n of document.querySelectorAll("[data-t]")) n.textContent = t(n.dataset.t);
  $("lang").value = lang;
}

function token() { return sessionStorage.getItem("token"); }

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store", credentials: "omit", redirect: "error",
  });
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (r.status === 401) { signOut(t("bad_token")); throw new ApiError(401, json); }
  if (!r.ok) throw new ApiError(r.status, json);
  return json;
}

function signOut(message) {
  sessionStorage.removeItem("token");
  stopPolling();
  $("nav").hidden = true;
  $("view").replaceChildren();
  $("signin").hidden = false;
  $("signin-error").textContent = message || "";
  $("token").value = "";
  $("token").focus();
}

function stopPolling() { if (poll) { clearTimeout(poll); poll = null; } }

function show(...nodes) {
  $("view").replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined));
}

function failure(e) {
  return el("p", { class: "error", role: "alert" }, `${t("error")}: ${e.message}`);
}

function table(headers, rows) {
  if (!rows.length) return el("p", {}, t("none"));
  return el("table", {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c))))));
}

function fmt(n) { return n === undefined || n === null ? "" : Number(n).toLocaleString(lang); }

// -- jobs ------------------------------------------------------------------------

async function jobsView(params) {
  const state = params.get("state") || "";
  const cursor = params.get("cursor") || "";
  const select = el("select", { id: "job-state" },
    el("option", { value: "" }, t("all")),
    JOB_STATES.map((s) => el("option", { value: s, selected: s === state }, s)));
  const form = el("form", { class: "filters", onsubmit: (ev) => {
    ev.preventDefault();
    location.hash = `#/jobs?state=${encodeURIComponent(select.value)}`;
  } }, el("label", { for: "job-state" }, t("state")), select, el("button", { type: "submit" }, t("filter")));
  show(el("h2", {}, t("jobs")), form, el("p", {}, t("loading")));
  const q = new URLSearchParams({ limit: "20" });
  if (state) q.set("state", state);
  if (cursor) q.set("cursor", cursor);
  try {
    const page = await api("GET", `/jobs?${q}`);
    const rows = page.jobs.map((j) => [
      el("a", { href: `#/jobs/${encodeURIComponent(j.job_id)}` }, j.job_id),
      el("span", { class: `state ${j.state}` }, j.state),
      fmt(j.rows), j.created_at || "",
    ]);
    const more = page.next_cursor
      ? el("a", { href: `#/jobs?state=${encodeURIComponent(state)}&cursor=${encodeURIComponent(page.next_cursor)}` }, t("more"))
      : null;
    show(el("h2", {}, t("jobs")), form, table([t("job"), t("state"), t("rows"), t("created")], rows), more);
  } catch (e) { show(el("h2", {}, t("jobs")), form, failure(e)); }
}

async function jobView(id) {
  stopPolling();
  try {
    const j = await api("GET", `/jobs/${encodeURIComponent(id)}`);
    const final = !["queued", "running"].includes(j.state);
    const queries = (j.queries || []).map((q) => [
      q.query, el("span", { class: `state ${q.state}` }, q.state), fmt(q.rows), fmt(q.bytes),
      el("ul", {}, (q.files || []).map((f) => el("li", {}, f))),
      q.error || "", q.discrepancy || "",
    ]);
    const cancel = final ? null : el("button", { type: "button", id: "cancel", onclick: async () => {
      if (!confirm(t("confirm_cancel"))) return;
      try { await api("DELETE", `/jobs/${encodeURIComponent(id)}`); } catch (e) { $("view").append(failure(e)); }
      jobView(id);
    } }, t("cancel"));
    show(
      el("p", {}, el("a", { href: "#/jobs" }, t("back"))),
      el("h2", {}, `${t("job")} ${j.job_id}`),
      el("dl", {},
        el("dt", {}, t("state")), el("dd", { id: "job-state-value", class: `state ${j.state}` }, j.state),
        el("dt", {}, t("owner")), el("dd", {}, j.owner),
        el("dt", {}, t("country")), el("dd", {}, (j.request && j.request.country) || ""),
        el("dt", {}, t("rows")), el("dd", { id: "job-rows" }, fmt(j.rows)),
        el("dt", {}, t("bytes")), el("dd", {}, fmt(j.bytes)),
        el("dt", {}, t("created")), el("dd", {}, j.created_at || ""),
        el("dt", {}, t("started")), el("dd", {}, j.started_at || ""),
        el("dt", {}, t("finished")), el("dd", {}, j.finished_at || "")),
      j.error ? el("pre", { class: "error", id: "job-error" }, j.error) : null,
      table([t("query"), t("state"), t("rows"), t("bytes"), t("files"), t("error"), t("discrepancy")], queries),
      (j.queries || []).filter((q) => q.manifest).map((q) =>
        el("details", { class: "manifest" },
          el("summary", {}, `${t("manifest")}: ${q.query}`),
          el("p", {}, q.manifest),
          table([t("file"), t("rows"), t("bytes"), "sha256"],
            (q.parts || []).map((p) => [p.file, fmt(p.rows), fmt(p.bytes), el("code", {}, p.sha256)])))),
      cancel);
    if (!final) poll = setTimeout(() => { if (location.hash === `#/jobs/${encodeURIComponent(id)}`) jobView(id); }, 1000);
  } catch (e) { show(el("p", {}, el("a", { href: "#/jobs" }, t("back"))), failure(e)); }
}

// -- a new extraction --------------------------------------------------------------

async function newView() {
  const queriesPath = el("input", { id: "queries-path", required: true, value: "./queries" });
  const country = el("select", { id: "country", required: true });
  const destination = el("input", { id: "destination", required: true, value: "/Volumes/main/demo/landing" });
  const overwrite = el("input", { id: "overwrite", type: "checkbox" });
  const list = el("fieldset", { id: "queries" }, el("legend", {}, t("queries")));
  const preview = el("div", { id: "preview" });
  const result = el("div", { id: "result", role: "status" });
  const chosen = () => [...list.querySelectorAll("input:checked")].map((i) => i.value);
  const form = el("form", { id: "extract-form", onsubmit: async (ev) => {
    ev.preventDefault();
    result.replaceChildren(t("loading"));
    try {
      const job = await api("POST", "/extract", {
        queries_path: queriesPath.value, config_path: "./config", country: country.value,
        destination: destination.value, queries: chosen(), overwrite: overwrite.checked,
      });
      location.hash = `#/jobs/${encodeURIComponent(job.job_id)}`;
    } catch (e) { result.replaceChildren(failure(e)); }
  } },
    el("label", { for: "queries-path" }, t("queries_path")), queriesPath,
    el("label", { for: "country" }, t("country")), country,
    el("label", { for: "destination" }, t("destination")), destination,
    el("label", { for: "overwrite", class: "check" }, overwrite, t("overwrite")),
    list,
    el("button", { type: "button", id: "preview-button", onclick: async () => {
      preview.replaceChildren(t("loading"));
      const q = new URLSearchParams({ config_path: "./config", country: country.value });
      if (chosen().length) q.set("queries", chosen().join(","));
      try {
        const p = await api("GET", `/params?${q}`);
        const params = Object.entries(p.parameters || p.params || {}).map(([k, v]) =>
          [k, typeof v === "object" && v !== null ? String(v.value ?? JSON.stringify(v)) : String(v)]);
        preview.replaceChildren(el("h3", {}, t("parameters")), table(["", ""], params),
          ...(p.queries || p.rendered || []).map((r) => el("pre", {}, r.sql || "")));
      } catch (e) { preview.replaceChildren(failure(e)); }
    } }, t("preview")),
    el("button", { type: "submit", id: "start" }, t("start")));
  show(el("h2", {}, t("nav_new")), form, preview, result);
  const load = async () => {
    list.replaceChildren(el("legend", {}, t("queries")));
    try {
      const qs = await api("GET", `/queries?${new URLSearchParams({ queries_path: queriesPath.value })}`);
      for (const q of qs.queries || []) {
        const id = `q-${q.name}`;
        list.append(el("label", { for: id, class: "check" },
          el("input", { id, type: "checkbox", value: q.name }), q.name));
      }
    } catch (e) { list.append(failure(e)); }
  };
  queriesPath.addEventListener("change", load);
  try {
    const cs = await api("GET", "/countries?config_path=./config");
    for (const c of cs.countries || []) country.append(el("option", { value: c }, c));
  } catch (e) { result.replaceChildren(failure(e)); }
  await load();
}

// -- sync events -----------------------------------------------------------------

async function eventsView(params) {
  const status = params.get("status") || "";
  const select = el("select", { id: "event-status" },
    el("option", { value: "" }, t("all")),
    EVENT_STATES.map((s) => el("option", { value: s, selected: s === status }, s)));
  const form = el("form", { class: "filters", onsubmit: (ev) => {
    ev.preventDefault();
    location.hash = `#/events?status=${encodeURIComponent(select.value)}`;
  } }, el("label", { for: "event-status" }, t("status")), select, el("button", { type: "submit" }, t("filter")));
  show(el("h2", {}, t("events")), form, el("p", {}, t("loading")));
  const q = new URLSearchParams({ limit: "50" });
  if (status) q.set("status", status);
  try {
    const list = await api("GET", `/sync/events?${q}`);
    const events = Array.isArray(list) ? list : (list.events || []);
    const rows = events.map((e) => [
      el("a", { href: `#/events/${encodeURIComponent(e.event_id)}` }, e.event_id),
      el("span", { class: `state ${e.status}` }, e.status), e.operation, e.target_table,
      e.created_at || "",
    ]);
    show(el("h2", {}, t("events")), form,
      table([t("event"), t("status"), t("operation"), t("target"), t("created")], rows));
  } catch (e) { show(el("h2", {}, t("events")), form, failure(e)); }
}

async function eventView(id) {
  try {
    const e = await api("GET", `/sync/events/${encodeURIComponent(id)}`);
    const row = (k, v, attrs) => [el("dt", {}, t(k)), el("dd", attrs || {}, v === null || v === undefined ? "" : String(v))];
    show(
      el("p", {}, el("a", { href: "#/events" }, t("back"))),
      el("h2", {}, `${t("event")} ${e.event_id}`),
      el("dl", {},
        row("status", e.status, { class: `state ${e.status}` }), row("operation", e.operation),
        row("source", e.source_table), row("target", e.target_table),
        row("expected", e.rows_expected), row("affected", e.rows_affected),
        row("discrepancy", e.discrepancy), row("requested_by", e.requested_by),
        row("attempts", e.attempts), row("claimed_by", e.claimed_by),
        row("created", e.created_at), row("completed_at", e.completed_at)),
      e.error_message ? el("pre", { class: "error", id: "event-error" }, e.error_message) : null);
  } catch (err) { show(el("p", {}, el("a", { href: "#/events" }, t("back"))), failure(err)); }
}

// -- audit -----------------------------------------------------------------------

const AUDIT_FIELDS = ["user", "resource", "action", "event_type", "outcome", "since", "until"];

async function auditView(params) {
  const inputs = {};
  const fields = AUDIT_FIELDS.map((f) => {
    const input = el("input", {
      id: `audit-${f}`, name: f, value: params.get(f) || "",
      placeholder: f === "since" || f === "until" ? "2026-11-30T00:00:00Z" : "",
    });
    inputs[f] = input;
    return el("div", { class: "field" }, el("label", { for: `audit-${f}` }, t(`audit_${f}`)), input);
  });
  const form = el("form", { class: "search", id: "audit-form", onsubmit: (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const f of AUDIT_FIELDS) if (inputs[f].value.trim()) q.set(f, inputs[f].value.trim());
    location.hash = `#/audit?${q}`;
  } }, fields, el("button", { type: "submit", id: "audit-search" }, t("search")));
  show(el("h2", {}, t("nav_audit")), form, el("p", {}, t("loading")));
  const q = new URLSearchParams({ limit: "200" });
  for (const f of AUDIT_FIELDS) if (params.get(f)) q.set(f, params.get(f));
  try {
    const page = await api("GET", `/audit?${q}`);
    const rows = page.lines.map((l) => [
      l.timestamp, l.user_name || "—", el("span", { class: `state ${l.outcome}` }, l.event_type),
      l.action, l.resource, l.missing_right || "", l.detail || "", l.source_ip || "",
    ]);
    show(el("h2", {}, t("nav_audit")), form,
      el("div", { id: "audit-results" },
        table([t("time"), t("audit_user"), t("audit_event_type"), t("audit_action"), t("audit_resource"),
               t("missing_right"), t("detail"), t("ip")], rows)),
      page.more ? el("p", {}, t("more_lines")) : null);
  } catch (e) { show(el("h2", {}, t("nav_audit")), form, el("div", { id: "audit-results" }, failure(e))); }
}

// -- at a glance -----------------------------------------------------------------

/** Bars of rows per day, extracted and synced side by side (SVG). */
function chart(days) {
  const max = Math.max(1, ...days.map((d) => Math.max(d.extracted, d.synced)));
  const W = 640, H = 200, pad = 30, slot = Math.min(90, (W - pad) / Math.max(days.length, 1));
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H + 40}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", t("chart_label"));
  svg.setAttribute("class", "chart");
  const add = (tag, attrs, text) => {
    const n = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
    if (text !== undefined) n.textContent = text;
    svg.append(n);
  };
  days.forEach((d, i) => {
    const x = pad + i * slot;
    const bar = (v, dx, cls) => {
      const h = (v / max) * H;
      add("rect", { x: x + dx, y: H - h, width: slot / 3, height: h, class: cls });
    };
    bar(d.extracted, slot * 0.1, "bar-extracted");
    bar(d.synced, slot * 0.45, "bar-synced");
    add("text", { x: x + slot * 0.1, y: H + 16, class: "axis" }, d.day.slice(5));
  });
  add("rect", { x: pad, y: H + 24, width: 10, height: 10, class: "bar-extracted" });
  add("text", { x: pad + 14, y: H + 33, class: "axis" }, t("extracted"));
  add("rect", { x: pad + 140, y: H + 24, width: 10, height: 10, class: "bar-synced" });
  add("text", { x: pad + 154, y: H + 33, class: "axis" }, t("synced"));
  return svg;
}

async function overviewView() {
  show(el("h2", {}, t("nav_overview")), el("p", {}, t("loading")));
  try {
    const [jobs, events, ready] = await Promise.all([
      api("GET", "/jobs?limit=500"),
      api("GET", "/sync/events?limit=500").catch(() => ({ events: [] })),
      fetch("/health/ready", { headers: { Authorization: `Bearer ${token()}` }, cache: "no-store" })
        .then((r) => r.json()).catch(() => null),
    ]);
    const evs = Array.isArray(events) ? events : (events.events || []);
    const perDay = new Map();
    const perTable = new Map();
    const day = (ts) => (ts || "").slice(0, 10);
    const bump = (m, k, field, n) => {
      if (!m.has(k)) m.set(k, { extracted: 0, synced: 0 });
      m.get(k)[field] += n;
    };
    for (const j of jobs.jobs) {
      for (const q of j.queries || []) {
        if (!q.rows || !j.finished_at) continue;
        bump(perDay, day(j.finished_at), "extracted", q.rows);
        bump(perTable, q.query, "extracted", q.rows);
      }
    }
    for (const e of evs) {
      if (e.status !== "completed" || !e.rows_affected) continue;
      bump(perDay, day(e.completed_at || e.created_at), "synced", e.rows_affected);
      bump(perTable, e.target_table, "synced", e.rows_affected);
    }
    const days = [...perDay.entries()].sort(([a], [b]) => a.localeCompare(b)).slice(-14)
      .map(([d, v]) => ({ day: d, ...v }));
    const since = Date.now() - 24 * 3600 * 1000;
    const recent = (ts) => ts && Date.parse(ts) >= since;
    const failures = [
      ...jobs.jobs.filter((j) => ["failed", "interrupted"].includes(j.state) && recent(j.finished_at || j.created_at))
        .map((j) => [el("a", { href: `#/jobs/${encodeURIComponent(j.job_id)}` }, j.job_id), t("job"), j.error || j.state]),
      ...evs.filter((e) => e.status === "failed" && recent(e.completed_at || e.created_at))
        .map((e) => [el("a", { href: `#/events/${encodeURIComponent(e.event_id)}` }, e.event_id), t("event"), e.error_message || ""]),
    ];
    const health = ready ? ["sqlserver", "databricks"].map((k) => [k,
      el("span", { class: `state ${ready[k] && ready[k].ok ? "succeeded" : "failed"}` }, ready[k] && ready[k].ok ? "ok" : t("down")),
      (ready[k] && ready[k].detail) || ""]) : [];
    show(
      el("h2", {}, t("nav_overview")),
      el("section", { "aria-labelledby": "h-health" }, el("h3", { id: "h-health" }, t("health")),
        el("div", { id: "health" }, table(["", t("status"), t("detail")], health))),
      el("section", { "aria-labelledby": "h-failures" }, el("h3", { id: "h-failures" }, t("failures_24h")),
        el("div", { id: "failures" }, table([t("id"), t("kind"), t("error")], failures))),
      el("section", { "aria-labelledby": "h-days" }, el("h3", { id: "h-days" }, t("rows_per_day")),
        days.length ? chart(days) : null,
        table([t("day"), t("extracted"), t("synced")], days.map((d) => [d.day, fmt(d.extracted), fmt(d.synced)]))),
      el("section", { "aria-labelledby": "h-tables" }, el("h3", { id: "h-tables" }, t("rows_per_table")),
        el("div", { id: "per-table" }, table([t("table"), t("extracted"), t("synced")],
          [...perTable.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, fmt(v.extracted), fmt(v.synced)])))));
  } catch (e) { show(el("h2", {}, t("nav_overview")), failure(e)); }
}

// -- routing ---------------------------------------------------------------------

function route() {
  stopPolling();
  if (!token()) { signOut(); return; }
  $("signin").hidden = true;
  $("nav").hidden = false;
  const [path, query] = (location.hash.slice(1) || "/jobs").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "jobs" && parts[1]) jobView(parts[1]);
  else if (parts[0] === "new") newView();
  else if (parts[0] === "events" && parts[1]) eventView(parts[1]);
  else if (parts[0] === "events") eventsView(params);
  else if (parts[0] === "audit") auditView(params);
  else if (parts[0] === "overview") overviewView();
  else jobsView(params);
  $("main").focus();
}

document.addEventListener("DOMContentLoaded", () => {
  translate();
  $("lang").addEventListener("change", () => {
    lang = $("lang").value;
    sessionStorage.setItem("lang", lang);
    translate();
    if (token()) route();
  });
  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("token", $("token").value.trim());
    try {
      await api("GET", "/jobs?limit=1");
      $("token").value = "";
      if (!location.hash) location.hash = "#/jobs"; else route();
    } catch (e) {
      if (e.status !== 401) $("signin-error").textContent = e.message;
    }
  });
  $("signout").addEventListener("click", () => signOut());
  window.addEventListener("hashchange", route);
  if (token()) route(); else signOut();
});
