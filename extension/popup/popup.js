// The user's view of the store: models and the sites using them, storage totals,
// downloads in progress, and the controls (pin, delete, forget a site). Everything
// goes through the service worker's "webmodels-manage" port, which marks the
// requests trusted; the popup never talks to the host or to pages directly.

import { commonsView } from "./commons-view.js";
import { fill, h } from "./dom.js";
import { formatBytes, modelTitle, siteLabel } from "./format.js";
import { ManageClient } from "./manage-client.js";
import { ModelPages, groupByModel, groupsView, onSearch, watchEnd } from "./model-pages.js";
import { modelsView, withForms } from "./models-view.js";
import {
  catalogsView,
  downloadOrigins,
  downloadsView,
  sitesOf,
  sitesView,
  totalsView,
  visibleJobs,
} from "./views.js";
import { plural } from "./widgets.js";

const JOBS_POLL_MS = 500;
const HIDDEN_POLL_MS = 2_000;
const REFRESH_MS = 3_000;
// Chromium's words when the native host is not registered (or not for this
// extension's id), which the service worker passes on in its error message
// (chrome/browser/extensions/api/messaging/native_message_process_host.cc).
const HOST_MISSING =
  /native messaging host (is )?not found|access to the specified native messaging host is forbidden/i;

const $ = (id) => document.getElementById(id);

const state = {
  phase: "connecting", // connecting | ready | no-host | disconnected
  hello: null,
  models: [],
  catalogs: [],
  stats: null,
  jobs: [],
  problem: null, // {code, message} that ended the connection
  reconnecting: false,
  pollFailed: false, // the notice shows a failed poll (hidden again once one works)
  ui: { confirm: new Map(), busy: new Set() },
  rendered: { models: "", jobs: "" },
};

const client = new ManageClient({
  // The service worker may be restarted by the browser; the next call opens a new
  // port (and the worker a new host). Only when that fails is the user told.
  onDisconnect: () => {
    if (state.phase !== "ready" || state.reconnecting) return;
    state.reconnecting = true;
    refresh()
      .catch((error) => setPhase(problemPhase(error), error))
      .finally(() => (state.reconnecting = false));
  },
});

// The stored files, a page at a time (searching and lazy scrolling: model-pages.js).
const pages = new ModelPages(client);

const actions = {
  pin: (model, pinned) =>
    run(model.sha256, async () => {
      await client.call("manage.pin", { sha256: model.sha256, pinned });
      notify("info", `${modelTitle(model)} ${pinned ? "pinned: it is never removed to make room" : "unpinned"}.`);
    }),
  askShare: (model) => setConfirm(model.sha256, "share"),
  cancelShare: (model) => setConfirm(model.sha256, null),
  share: (model, topSite, shared) =>
    run(model.sha256, async () => {
      await client.call("manage.share", { sha256: model.sha256, top_site: topSite, shared });
      state.ui.confirm.delete(model.sha256);
      const what = shared ? `Shared ${modelTitle(model)} with` : `Stopped sharing ${modelTitle(model)} with`;
      notify("info", `${what} ${siteLabel(topSite)}.`);
    }),
  askDelete: (model) => setConfirm(model.sha256, "delete"),
  cancelDelete: (model) => setConfirm(model.sha256, null),
  confirmDelete: (model) => {
    const step = state.ui.confirm.get(model.sha256);
    if (model.pinned && step !== "force") return setConfirm(model.sha256, "force");
    return run(model.sha256, async () => {
      try {
        const result = await client.call("manage.delete", { sha256: model.sha256, force: step === "force" });
        state.ui.confirm.delete(model.sha256);
        notify("info", `Deleted ${modelTitle(model)}; ${formatBytes(result.freed_bytes ?? 0)} freed.`);
      } catch (error) {
        // Pinned meanwhile (another window, the CLI): ask the second question.
        if (error.code === "model_pinned") return setConfirm(model.sha256, "force");
        state.ui.confirm.delete(model.sha256);
        throw error;
      }
    });
  },
  askRemoveCatalog: (name) => setConfirm(`catalog:${name}`, "remove"),
  cancelRemoveCatalog: (name) => setConfirm(`catalog:${name}`, null),
  removeCatalog: (name) =>
    run(`catalog:${name}`, async () => {
      await client.call("manage.catalogs.remove", { name });
      state.ui.confirm.delete(`catalog:${name}`);
      notify("info", `Removed the catalog ${name}.`);
    }),
  addCatalog: (source, key) =>
    run("catalog-add", async () => {
      const { catalog, changed } = await client.call("manage.catalogs.add", { source, key });
      $("catalog-add").reset();
      const what = changed ? "Added" : "Already had";
      notify("info", `${what} the catalog ${catalog.name} (version ${catalog.version}, ${catalog.models} ${plural(catalog.models, "model")}).`);
    }),
  askClear: (topSite) => setConfirm(`site:${topSite}`, "clear"),
  cancelClear: (topSite) => setConfirm(`site:${topSite}`, null),
  confirmClear: (topSite) =>
    run(`site:${topSite}`, async () => {
      const result = await client.call("manage.clear_site", { top_site: topSite });
      state.ui.confirm.delete(`site:${topSite}`);
      const dropped = result.references_dropped ?? 0;
      const freed = formatBytes(result.freed_bytes ?? 0);
      const references = `${dropped} ${plural(dropped, "reference")}`;
      notify("info", `Forgot ${siteLabel(topSite)}: ${references} dropped, ${freed} freed.`);
    }),
};

/** Run a control's call with its buttons disabled; show any error; refresh. */
async function run(key, work) {
  state.ui.busy.add(key);
  renderModels(true);
  try {
    await work();
  } catch (error) {
    showError(error);
  } finally {
    state.ui.busy.delete(key);
    await refresh().catch(showError);
    renderModels(true);
  }
}

function setConfirm(key, step) {
  if (step) state.ui.confirm.set(key, step);
  else state.ui.confirm.delete(key);
  renderModels(true);
}

// --- talking to the host ----------------------------------------------------------

async function connect() {
  setPhase("connecting");
  // `hello` only names the host in the header; the manage.* calls decide whether
  // the popup works.
  const hello = client.call("hello").catch(() => null);
  try {
    await refresh();
    state.hello = await hello;
    setPhase("ready");
  } catch (error) {
    setPhase(problemPhase(error), error);
  }
}

function problemPhase(error) {
  return HOST_MISSING.test(`${error.code} ${error.message}`) ? "no-host" : "disconnected";
}

async function refresh() {
  const commons = client.call("manage.commons.list");
  const [, stats, jobs, settings, catalogs] = await Promise.all([
    pages.reload(),
    client.call("manage.stats"),
    client.call("manage.jobs"),
    client.call("manage.settings.get"),
    client.call("manage.catalogs.list"),
  ]);
  state.catalogs = catalogs.catalogs ?? [];
  fill($("commons-list"), ...commonsView((await commons).lists ?? []));
  // A locked policy of the administrator sets the mode: shown, not offered.
  const managed = (settings.managed ?? []).includes("privacy_mode");
  $("privacy-managed").hidden = !managed;
  for (const radio of document.querySelectorAll('input[name="privacy-mode"]')) {
    radio.checked = radio.value === settings.privacy_mode;
    radio.disabled = managed;
  }
  state.models = pages.models;
  state.stats = stats;
  state.jobs = jobs.jobs ?? [];
  state.refreshedAt = Date.now();
  render();
}

/** Poll downloads often while any run (and now and then anyway); refresh the
 *  models when a download finished, so the new model shows up at once. */
async function poll() {
  if (state.phase === "ready") {
    try {
      const before = new Set(visibleJobs(state.jobs).filter((j) => j.state === "active").map((j) => j.id));
      const { jobs = [] } = await client.call("manage.jobs");
      state.jobs = jobs;
      const finished = jobs.some((j) => before.has(j.id) && j.state !== "active");
      if (finished || Date.now() - (state.refreshedAt ?? 0) > REFRESH_MS) await refresh();
      else renderJobs();
      if (state.pollFailed) $("notice").hidden = true; // the host is back
      state.pollFailed = false;
    } catch (error) {
      if (error.code !== "disconnected") showError(error);
      state.pollFailed = true;
    }
  }
  // A popup is always in view; the popup opened as a tab may sit in the background.
  setTimeout(poll, document.hidden ? HIDDEN_POLL_MS : JOBS_POLL_MS);
}

// --- rendering ----------------------------------------------------------------------

function setPhase(phase, problem = null) {
  state.phase = phase;
  state.problem = problem && { code: problem.code ?? "error", message: problem.message ?? String(problem) };
  render();
}

function render() {
  document.body.dataset.state = state.phase;
  for (const section of document.querySelectorAll("[data-phase]")) {
    section.hidden = !section.dataset.phase.split(" ").includes(state.phase);
  }
  renderHeader();
  renderProblem();
  if (state.phase !== "ready") {
    $("downloads").hidden = $("sites").hidden = true;
    state.rendered = { models: "", jobs: "" };
    return;
  }
  fill($("totals"), ...totalsView(state.stats));
  renderJobs();
  renderModels();
  $("store-path").textContent = state.stats?.store_path ?? "";
}

function renderHeader() {
  const status = $("host-status");
  const labels = {
    connecting: "connecting…",
    ready: state.hello ? `host ${state.hello.host_version} · ${providers(state.hello)}` : "host connected",
    "no-host": "host not installed",
    disconnected: "not connected",
  };
  status.textContent = labels[state.phase];
  status.dataset.tone = state.phase;
  status.title = state.hello ? `protocol ${state.hello.protocol_version}, store ${state.hello.store_layout}` : "";
}

/** "CUDA, CPU": the execution providers that ran the host's probe session. */
function providers(hello) {
  const names = (hello.providers ?? []).map((p) => p.replace(/ExecutionProvider$/, ""));
  return names.length ? names.join(", ") : "no runtime";
}

function renderProblem() {
  const problem = state.problem;
  for (const slot of document.querySelectorAll(".problem-detail-slot")) {
    fill(slot, problem ? h("code", {}, problem.code) : null, problem ? ` ${problem.message}` : null);
  }
}

function renderJobs(force = false) {
  const jobs = visibleJobs(state.jobs);
  const key = JSON.stringify(jobs.map((j) => [j.id, j.state, j.loaded, j.total])) + state.models.length;
  if (!force && key === state.rendered.jobs) return;
  state.rendered.jobs = key;
  $("downloads").hidden = jobs.length === 0;
  fill($("job-list"), ...downloadsView(jobs, state.models));
}

function renderModels(force = false) {
  state.ui.from = downloadOrigins(state.jobs);
  const key = JSON.stringify([state.models, state.catalogs, [...state.ui.from], pages.query]);
  if (!force && key === state.rendered.models) return;
  state.rendered.models = key;
  const sites = sitesOf(state.models);
  const total = pages.query ? `${state.models.length}${pages.next ? "+" : ""}` : state.stats?.models;
  $("model-count").textContent = state.models.length ? String(total ?? state.models.length) : "";
  $("models-empty").hidden = state.models.length > 0 || Boolean(pages.query);
  $("models-no-match").hidden = state.models.length > 0 || !pages.query;
  $("model-search").hidden = !pages.query && !pages.next && state.models.length < 10;
  const groups = groupByModel(withForms(state.models));
  fill($("model-list"), ...groupsView(groups, (files) => modelsView(files, state.ui, actions)));
  $("sites").hidden = sites.length === 0;
  fill($("site-list"), ...sitesView(sites, state.ui, actions));
  fill($("catalog-list"), ...catalogsView(state.catalogs, state.ui, actions));
  $("catalog-add").querySelector("button").disabled = state.ui.busy.has("catalog-add");
}

function notify(kind, text, code = null) {
  const box = $("notice");
  box.dataset.kind = kind;
  fill(box.querySelector(".notice-text"), code ? h("code", {}, code) : null, code ? " " : null, text);
  box.hidden = false;
  clearTimeout(notify.timer);
  if (kind === "info") notify.timer = setTimeout(() => (box.hidden = true), 6_000);
}

function showError(error) {
  notify("error", error.message ?? String(error), error.code ?? "error");
}

$("notice-close").addEventListener("click", () => ($("notice").hidden = true));
$("catalog-add").addEventListener("submit", (event) => {
  event.preventDefault();
  actions.addCatalog($("catalog-source").value.trim(), $("catalog-key").value.trim());
});
$("retry").addEventListener("click", () => connect());
$("reconnect").addEventListener("click", () => connect());
$("refresh").addEventListener("click", () => refresh().catch(showError));
onSearch($("model-search"), (text) =>
  pages.search(text).then((changed) => changed && ((state.models = pages.models), renderModels())).catch(showError),
);
watchEnd($("models-more"), () =>
  pages.more().then((added) => added && ((state.models = pages.models), renderModels())).catch(showError),
);

// A popup is sized by its content; opened as a tab it may use the room.
chrome.tabs?.getCurrent?.((tab) => document.documentElement.classList.toggle("tab", Boolean(tab)));

await connect();
poll();

// The privacy mode (strict by default): the user's choice, explained beside it.
for (const radio of document.querySelectorAll('input[name="privacy-mode"]')) {
  radio.addEventListener("change", () =>
    run("privacy-mode", async () => {
      const { privacy_mode: mode } = await client.call("manage.settings.set", { privacy_mode: radio.value });
      notify("info", mode === "relaxed" ? "Relaxed: every site may use every stored model." : "Strict privacy restored.");
    }),
  );
}
