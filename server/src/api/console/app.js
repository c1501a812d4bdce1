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
    queries_path: "Carpeta de consultas",
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
    queries_path: "Queries folder",
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
  $("view").replaceChildren(...nodes.filter((n) => n !== null && n !== undefined));
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
      cancel);
    if (!final) poll = setTimeout(() => { if (location.hash === `#/jobs/${encodeURIComponent(id)}`) jobView(id); }, 1000);
  } catch (e) { show(el("p", {}, el("a", { href: "#/jobs" }, t("back"))), failure(e)); }
}

// -- a new extraction --------------------------------------------------------------

async function newView() {
  const queriesPath = el("input", { id: "queries-path", required: true, value: "./queries" });
  const country = el("input", { id: "country", required: true, value: "Colombia" });
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
