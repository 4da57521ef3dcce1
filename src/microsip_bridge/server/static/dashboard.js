// The dashboard's behaviour: live calls over the WebSocket, the call log, dialing, contacts,
// health. Every string from the API is written with textContent: caller names are chosen by
// whoever calls, so none of them is ever parsed as HTML.

const API = "/api/v1";
const LOG_PAGE = 25;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 30000;
const PENDING_CHECK_MS = 5000;
const DTMF_KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];
const STATE_LABELS = {
  ringing: "Ringing",
  dialing: "Dialing",
  connected: "On the call",
  ended: "Ended",
};
const OUTCOME_LABELS = {
  answered: "Answered",
  missed: "Missed",
  declined: "Declined",
  rejected: "Rejected",
  answered_elsewhere: "Answered elsewhere",
  busy: "Busy",
  cancelled: "Cancelled",
  failed: "Failed",
  unknown: "Unknown",
  never_placed: "Never placed",
};

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// --- talking to the daemon ----------------------------------------------------------------------

function detailText(data, fallback) {
  const detail = data && typeof data === "object" ? data.detail : null;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    // FastAPI's validation errors: a list of {loc, msg}.
    return detail.map((d) => (d && typeof d.msg === "string" ? d.msg : String(d))).join("; ");
  }
  return fallback;
}

async function api(path, { method = "GET", body } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch {
    throw new ApiError(0, "the daemon does not answer (is microsip-bridge serve running?)");
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.status === 401) {
    showLogin(true);
    throw new ApiError(401, "not logged in");
  }
  showLogin(false);
  if (!response.ok) {
    throw new ApiError(response.status, detailText(data, `${response.status} ${response.statusText}`));
  }
  return data;
}

function showLogin(needed) {
  $("login").hidden = !needed;
}

function showProblem(message) {
  $("problem-text").textContent = message;
  $("problem").hidden = !message;
}

async function control(verb, body) {
  try {
    return await api(`/control/${verb}`, { method: "POST", body: body ?? {} });
  } catch (error) {
    if (error.status !== 401) showProblem(`${verb}: ${error.message}`);
    throw error;
  }
}

// --- small helpers ------------------------------------------------------------------------------

function el(tag, { text, className, attrs } = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  for (const [name, value] of Object.entries(attrs ?? {})) node.setAttribute(name, value);
  return node;
}

function button(label, onClick, { className, attrs } = {}) {
  const node = el("button", { text: label, className, attrs: { type: "button", ...attrs } });
  node.addEventListener("click", onClick);
  return node;
}

function when(ts) {
  if (typeof ts !== "number") return "";
  const date = new Date(ts * 1000);
  const today = new Date();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (date.toDateString() === today.toDateString()) return time;
  return `${date.toLocaleDateString([], { day: "numeric", month: "short" })} ${time}`;
}

function clock(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) return "";
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

function callIsOpen(call) {
  return call && call.state !== "ended";
}

// --- live calls ---------------------------------------------------------------------------------

// call_id -> the latest call object seen (from the WebSocket, the call log or a dial).
const calls = new Map();
const uiState = new Map(); // call_id -> {muted, held}
const announced = new Set();
const TITLE = document.title;

function remember(call) {
  if (!call || typeof call.call_id !== "string") return false;
  const known = calls.get(call.call_id);
  // The newest version wins: the log page and the WebSocket may bring the same call.
  if (known && !known.pending && (known.updated_at ?? 0) > (call.updated_at ?? 0)) return false;
  calls.set(call.call_id, call);
  return true;
}

function renderLive() {
  const list = $("live-list");
  const open = [...calls.values()].filter(callIsOpen);
  open.sort((a, b) => (a.started_at ?? 0) - (b.started_at ?? 0));
  const keep = new Set(open.map((c) => c.call_id));
  for (const item of [...list.children]) {
    if (!keep.has(item.dataset.callId)) item.remove();
  }
  for (const id of uiState.keys()) if (!keep.has(id)) uiState.delete(id);
  let previous = null;
  for (const call of open) {
    let item = list.querySelector(`li[data-call-id="${CSS.escape(call.call_id)}"]`);
    if (!item || item.dataset.state !== call.state) {
      const fresh = liveItem(call);
      if (item) item.replaceWith(fresh);
      item = fresh;
    }
    fillLive(item, call);
    const want = previous ? previous.nextSibling : list.firstChild;
    if (want !== item) list.insertBefore(item, want);
    previous = item;
  }
  $("live-empty").hidden = open.length > 0;
  const ringing = open.filter((c) => c.state === "ringing");
  document.title = ringing.length ? `(${ringing.length} ringing) ${TITLE}` : TITLE;
  for (const call of ringing) {
    if (!announced.has(call.call_id)) {
      // Said once per call by screen readers (the clocks' ticking is not announced).
      announced.add(call.call_id);
      $("live-announce").textContent = `Incoming call from ${call.name || call.number || "an unknown number"}`;
    }
  }
  tickClocks();
}

function liveItem(call) {
  const item = $("live-call").content.firstElementChild.cloneNode(true);
  item.dataset.callId = call.call_id;
  item.dataset.state = call.state;
  const state = uiState.get(call.call_id) ?? { muted: false, held: false };
  uiState.set(call.call_id, state);
  const actions = item.querySelector(".call-actions");
  const who = () => call.name || call.number || "unknown number";
  if (call.state === "ringing") {
    actions.append(
      button("Answer", () => control("answer"), {
        className: "primary",
        attrs: { "aria-label": `Answer ${who()}` },
      }),
      button("Decline", () => control("hangup", { which: "incoming" }), {
        className: "danger",
        attrs: { "aria-label": `Decline ${who()}` },
      }),
    );
  } else if (call.state === "dialing") {
    actions.append(
      button("Hang up", () => control("hangup", { which: "calling" }), {
        className: "danger",
        attrs: { "aria-label": `Hang up the call to ${who()}` },
      }),
    );
  } else {
    const keypad = item.querySelector(".keypad");
    keypad.setAttribute("aria-label", "Keypad (DTMF)");
    for (const key of DTMF_KEYS) {
      keypad.append(
        button(key, () => control("dtmf", { digits: key }), {
          attrs: { "aria-label": `Send ${key}` },
        }),
      );
    }
    const hold = button("Hold", async () => {
      await control("hold");
      state.held = !state.held;
      hold.setAttribute("aria-pressed", String(state.held));
    }, { attrs: { "aria-pressed": String(state.held) } });
    const mute = button("Mute", async () => {
      await control("mute", { device: "mic", muted: !state.muted });
      state.muted = !state.muted;
      mute.setAttribute("aria-pressed", String(state.muted));
    }, { attrs: { "aria-pressed": String(state.muted) } });
    const pad = button("Keypad", () => {
      keypad.hidden = !keypad.hidden;
      pad.setAttribute("aria-expanded", String(!keypad.hidden));
      if (!keypad.hidden) keypad.querySelector("button").focus();
    }, { attrs: { "aria-expanded": "false" } });
    actions.append(
      button("Hang up", () => control("hangup", { which: "all" }), {
        className: "danger",
        attrs: { "aria-label": `Hang up the call with ${who()}` },
      }),
      hold,
      mute,
      pad,
    );
  }
  return item;
}

function fillLive(item, call) {
  const name = call.name || "";
  item.querySelector(".call-name").textContent = name || call.number || "unknown number";
  item.querySelector(".call-number").textContent = name ? call.number || "" : "";
  const direction = call.direction === "incoming" ? "Incoming" : "Outgoing";
  item.querySelector(".call-state").textContent = `${direction} · ${STATE_LABELS[call.state] ?? call.state}`;
  const since = call.state === "connected" ? call.answered_at : call.started_at;
  item.querySelector(".call-clock").dataset.since = typeof since === "number" ? String(since) : "";
}

function tickClocks() {
  const now = Date.now() / 1000;
  for (const node of document.querySelectorAll(".call-clock")) {
    const since = Number.parseFloat(node.dataset.since);
    node.textContent = Number.isFinite(since) ? clock(now - since) : "";
  }
}

// --- the call log -------------------------------------------------------------------------------

const log = { pages: [null], page: 0, next: null, filters: new URLSearchParams(), loading: null };

function logFilters() {
  const form = $("log-form");
  const params = new URLSearchParams();
  for (const name of ["q", "direction", "outcome"]) {
    const value = form.elements[name].value.trim();
    if (value) params.set(name, value);
  }
  // Dates are the user's local days: from the start of the first to the end of the last.
  const since = form.elements.since.value;
  const until = form.elements.until.value;
  if (since) params.set("since", String(new Date(`${since}T00:00:00`).getTime() / 1000));
  if (until) params.set("until", String(new Date(`${until}T23:59:59.999`).getTime() / 1000));
  return params;
}

function updateCsvLink() {
  const query = log.filters.toString();
  $("log-csv").href = `${API}/calls.csv${query ? `?${query}` : ""}`;
}

async function loadLog() {
  const params = new URLSearchParams(log.filters);
  params.set("limit", String(LOG_PAGE));
  const cursor = log.pages[log.page];
  if (cursor) params.set("next", cursor);
  const request = api(`/calls?${params}`);
  log.loading = request;
  let data;
  try {
    data = await request;
  } catch (error) {
    if (error.status !== 401) showProblem(`call log: ${error.message}`);
    return;
  } finally {
    if (log.loading === request) log.loading = null;
  }
  const page = Array.isArray(data?.calls) ? data.calls : [];
  log.next = typeof data?.next === "string" && data.next ? data.next : null;
  const rows = $("log-rows");
  rows.replaceChildren(...page.map(logRow));
  page.forEach(remember);
  $("log-empty").hidden = page.length > 0;
  $("log-newer").disabled = log.page === 0;
  $("log-older").disabled = log.next === null;
  $("log-page").textContent = `Page ${log.page + 1}`;
  renderLive();
}

function logRow(call) {
  const row = el("tr", {
    attrs: { "data-call-id": call.call_id, "data-state": call.state ?? "" },
  });
  row.dataset.outcome = call.outcome ?? "";
  fillRow(row, call);
  return row;
}

function fillRow(row, call) {
  row.dataset.state = call.state ?? "";
  row.dataset.outcome = call.outcome ?? "";
  const outcome = call.outcome
    ? OUTCOME_LABELS[call.outcome] ?? call.outcome
    : STATE_LABELS[call.state] ?? call.state ?? "";
  const duration = typeof call.duration === "number" ? clock(call.duration) : "";
  const cells = [
    el("td", { text: when(call.started_at), className: "num when" }),
    el("td", { text: call.direction ?? "", className: "direction" }),
    el("td", { text: call.name ?? "", className: "name" }),
    el("td", { text: call.number ?? "", className: "number" }),
    el("td", { text: outcome, className: "outcome" }),
    el("td", { text: duration, className: "num duration" }),
  ];
  const action = el("td", { className: "action" });
  if (call.number) {
    action.append(
      button("Call", () => dial(call.number), {
        attrs: { "aria-label": `Call ${call.name || call.number} back` },
      }),
    );
  }
  row.replaceChildren(...cells, action);
}

let reloadTimer = null;

function callChanged(call) {
  const row = $("log-rows").querySelector(`tr[data-call-id="${CSS.escape(call.call_id)}"]`);
  if (row) {
    fillRow(row, call);
  } else if (log.page === 0) {
    // A call the page does not show yet: only the server knows whether it matches the filters.
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(loadLog, 250);
  }
}

// --- the live feed ------------------------------------------------------------------------------

const feed = { socket: null, cursor: null, attempts: 0, timer: null, synced: false };

function setLinkState(state, text) {
  const node = $("link-state");
  node.dataset.state = state;
  node.textContent = text;
}

function connect() {
  clearTimeout(feed.timer);
  feed.timer = null;
  const url = new URL(`${API}/events/ws`, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  // With the last cursor the daemon replays what we missed, once each and in order.
  if (feed.cursor !== null) url.searchParams.set("after", String(feed.cursor));
  let socket;
  try {
    socket = new WebSocket(url);
  } catch {
    scheduleReconnect();
    return;
  }
  feed.socket = socket;
  socket.addEventListener("open", () => {
    feed.attempts = 0;
    setLinkState("live", "Live");
    if (feed.cursor === null || !feed.synced) {
      // No cursor yet: what happened before this connection comes from the REST API.
      feed.synced = true;
      void loadLog();
    }
    void loadStatus();
  });
  socket.addEventListener("message", (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    if (typeof event?.cursor === "number") {
      if (feed.cursor !== null && event.cursor <= feed.cursor) return; // seen already
      feed.cursor = event.cursor;
    }
    onEvent(event);
  });
  socket.addEventListener("close", () => {
    if (feed.socket !== socket) return;
    feed.socket = null;
    scheduleReconnect();
  });
}

function scheduleReconnect() {
  if (feed.timer !== null) return;
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** feed.attempts);
  const delay = Math.round(base * (0.5 + Math.random() / 2));
  feed.attempts += 1;
  setLinkState("offline", `Reconnecting in ${Math.max(1, Math.round(delay / 1000))} s…`);
  feed.timer = setTimeout(connect, delay);
  // A closed feed may mean a lost login: the status request shows the login notice if so.
  void loadStatus();
}

function reconnectNow() {
  if (feed.socket === null) {
    feed.attempts = 0;
    connect();
  }
}

let lastEventAt = null;

function onEvent(event) {
  if (typeof event.ts === "number") {
    lastEventAt = event.ts;
    $("health-last").textContent = when(lastEventAt);
  }
  const call = event.call;
  if (call && typeof call.call_id === "string") {
    remember(call);
    renderLive();
    callChanged(call);
  }
}

// --- dialing ------------------------------------------------------------------------------------

async function dial(number) {
  const result = $("dial-result");
  result.dataset.kind = "";
  result.textContent = `Calling ${number}…`;
  try {
    const answer = await control("dial", { number });
    const id = answer?.call_id;
    result.textContent = `Calling ${number} (call ${id ?? "?"})`;
    result.dataset.callId = id ?? "";
    if (typeof id === "string" && !calls.has(id)) {
      // Shown at once; the WebSocket brings the real call under the same id.
      calls.set(id, {
        call_id: id,
        number,
        name: "",
        direction: "outgoing",
        state: "dialing",
        started_at: Date.now() / 1000,
        updated_at: 0,
        pending: true,
      });
      renderLive();
      followPending(id);
    }
    return answer;
  } catch (error) {
    result.dataset.kind = "error";
    result.textContent =
      error.status === 401 ? "Not logged in." : `Not dialled: ${error.message}`;
    return null;
  }
}

// A dialled call normally arrives over the WebSocket; one MicroSIP never placed may end without
// an event, so a call still pending after a while is read from the API.
function followPending(id, tries = 0) {
  setTimeout(async () => {
    if (!calls.get(id)?.pending) return;
    try {
      const call = await api(`/calls/${encodeURIComponent(id)}`);
      if (call && call.call_id === id) {
        remember(call);
        renderLive();
        callChanged(call);
      }
    } catch {
      // Not stored yet (404) or offline: ask again later.
    }
    if (calls.get(id)?.pending && tries < 20) followPending(id, tries + 1);
  }, PENDING_CHECK_MS);
}

// --- contacts -----------------------------------------------------------------------------------

async function searchContacts(query) {
  let data;
  try {
    data = await api(`/contacts?${new URLSearchParams({ q: query })}`);
  } catch (error) {
    if (error.status !== 401) showProblem(`contacts: ${error.message}`);
    return;
  }
  const found = Array.isArray(data) ? data : Array.isArray(data?.contacts) ? data.contacts : [];
  const list = $("contacts-list");
  list.replaceChildren(
    ...found.slice(0, 50).map((contact) => {
      const item = el("li");
      const who = el("span", { className: "contact-who" });
      who.append(
        el("strong", { text: contact.name || contact.number || "" }),
        el("span", { className: "contact-number", text: contact.number ?? "" }),
      );
      item.append(who);
      if (contact.number) {
        item.append(
          button("Call", () => dial(contact.number), {
            attrs: { "aria-label": `Call ${contact.name || contact.number}` },
          }),
        );
      }
      return item;
    }),
  );
  $("contacts-empty").hidden = found.length > 0;
}

// --- health -------------------------------------------------------------------------------------

function setHealth(id, text, ok) {
  const node = $(id);
  node.textContent = text;
  if (ok === undefined) delete node.dataset.ok;
  else node.dataset.ok = String(Boolean(ok));
}

function hooksSummary(hooks) {
  const states = Array.isArray(hooks)
    ? hooks.map((h) => h?.state)
    : hooks && typeof hooks === "object"
      ? Object.values(hooks).map((h) => (typeof h === "string" ? h : h?.state))
      : [];
  if (!states.length) return ["unknown", undefined];
  // "ours, another install": our hook at another path still reports every event.
  const isOurs = (s) => typeof s === "string" && s.startsWith("ours");
  const ours = states.filter(isOurs).length;
  if (ours === states.length) return [`all ${ours} ours`, true];
  const others = {};
  for (const s of states) if (!isOurs(s)) others[s] = (others[s] ?? 0) + 1;
  const rest = Object.entries(others).map(([s, n]) => `${n} ${s}`);
  return [`${ours} of ${states.length} ours; ${rest.join(", ")}`, false];
}

async function loadStatus() {
  let status;
  try {
    status = await api("/status");
  } catch (error) {
    if (error.status !== 401) setHealth("health-daemon", error.message, false);
    return;
  }
  const microsip = status?.microsip ?? {};
  if (microsip.found) {
    const running = microsip.running ? "running" : "not running";
    const version = microsip.version ? ` ${microsip.version}` : "";
    setHealth("health-microsip", `found${version}, ${running}: ${microsip.folder ?? microsip.ini ?? ""}`, microsip.running);
  } else {
    setHealth("health-microsip", "not found", false);
  }
  const [hooksText, hooksOk] = hooksSummary(status?.hooks);
  setHealth("health-hooks", hooksText, hooksOk);
  const last = status?.last_event_at ?? status?.last_event ?? lastEventAt;
  setHealth("health-last", typeof last === "number" ? when(last) : "none yet");
  const store = status?.store ?? {};
  setHealth("health-store", `${store.ok === false ? "not ok" : "ok"}: ${store.database ?? ""}`, store.ok !== false);
  setHealth("health-daemon", `version ${status?.version ?? "?"}`, true);
}

// --- wiring -------------------------------------------------------------------------------------

function wire() {
  $("dial-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const number = $("dial-number").value.trim();
    if (number) void dial(number);
  });
  $("log-form").addEventListener("submit", (event) => {
    event.preventDefault();
    log.filters = logFilters();
    log.pages = [null];
    log.page = 0;
    updateCsvLink();
    void loadLog();
  });
  $("log-form").addEventListener("reset", () => {
    log.filters = new URLSearchParams();
    log.pages = [null];
    log.page = 0;
    updateCsvLink();
    // The form's fields are cleared after this event: load once they are.
    setTimeout(loadLog, 0);
  });
  $("log-older").addEventListener("click", () => {
    if (log.next === null) return;
    log.pages = log.pages.slice(0, log.page + 1);
    log.pages.push(log.next);
    log.page += 1;
    void loadLog();
  });
  $("log-newer").addEventListener("click", () => {
    if (log.page === 0) return;
    log.page -= 1;
    void loadLog();
  });
  $("contacts-form").addEventListener("submit", (event) => {
    event.preventDefault();
    void searchContacts($("contacts-q").value.trim());
  });
  $("problem-close").addEventListener("click", () => showProblem(""));
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") reconnectNow();
  });
  setInterval(tickClocks, 1000);
  setInterval(loadStatus, 30000);
}

wire();
connect();
