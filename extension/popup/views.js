// DOM for the popup's totals, downloads, sites and catalogs, built from the state
// popup.js keeps (models-view.js has the model cards). Every function returns fresh
// nodes; `actions` carries the click handlers.

import { h } from "./dom.js";
import { fileName, formatBytes, modelTitle, percent, shortHash, siteLabel } from "./format.js";
import { button, confirmBox, count } from "./widgets.js";

const RECENT_FAILURE_S = 10 * 60;

export function totalsView(stats) {
  if (!stats) return [];
  const saved = stats.saved_bytes ?? 0;
  const logical = stats.logical_bytes ?? 0;
  const onDisk = (stats.physical_bytes ?? 0) + (stats.preinstalled_bytes ?? 0);
  const counts = [
    count(stats.models ?? 0, "model"),
    stats.pinned ? `${stats.pinned} pinned` : null,
    stats.preinstalled_models ? `${stats.preinstalled_models} pre-installed` : null,
    stats.quarantined ? `${stats.quarantined} quarantined` : null,
  ].filter(Boolean);
  return [
    h(
      "div",
      { class: "tiles" },
      tile("physical", "On disk", formatBytes(onDisk), "one copy of each model"),
      tile("logical", "Without sharing", formatBytes(logical), "a copy per site and place"),
      tile(
        "saved",
        "Saved",
        formatBytes(saved),
        logical ? `${percent(saved, logical)}% less` : "nothing shared yet",
        saved > 0 ? "good" : "",
      ),
    ),
    h("meter", {
      class: "usage",
      min: 0,
      max: Math.max(logical, 1),
      value: onDisk,
      title: `${formatBytes(onDisk)} on disk for ${formatBytes(logical)} of copies`,
    }),
    // What the bar's two parts mean: the user should not have to guess.
    h(
      "p",
      { class: "usage-legend" },
      h("span", { class: "swatch disk", "aria-hidden": "true" }),
      "on disk",
      h("span", { class: "swatch saved", "aria-hidden": "true" }),
      "saved by sharing (whole bar: a copy per site)",
    ),
    h("p", { class: "counts" }, counts.join(" · ")),
    ...[storedSummary(stats)].filter(Boolean).map((text) => h("p", { class: "stored" }, text)),
  ];
}

/** "X stored, Y on disk (Z saved by shared parts)": each stored file once at its full
 *  size against what the store takes on disk, where files share parts (segments);
 *  "; W freed by gc" when packs hold bytes no file needs any more. Null from a host
 *  that does not report it. */
export function storedSummary(stats) {
  if (!stats || typeof stats.stored_bytes !== "number") return null;
  const stored = stats.stored_bytes;
  const onDisk = stats.physical_bytes ?? 0;
  const saved = stats.shared_saved_bytes ?? Math.max(0, stored - onDisk);
  const reclaimable = stats.reclaimable_bytes ?? 0;
  const gc = reclaimable > 0 ? `; ${formatBytes(reclaimable)} more freed by gc` : "";
  return (
    `${formatBytes(stored)} stored, ${formatBytes(onDisk)} on disk ` +
    `(${formatBytes(saved)} saved by shared parts${gc})`
  );
}

function tile(stat, label, value, hint, tone = "") {
  return h(
    "div",
    { class: `tile ${tone}`.trim(), dataset: { stat } },
    h("span", { class: "tile-label" }, label),
    h("strong", { class: "tile-value" }, value),
    h("span", { class: "tile-hint" }, hint),
  );
}

/** Downloads running now, and the ones that failed in the last few minutes; with
 *  them the other files of their model (a model of several files is one download). */
export function visibleJobs(jobs, now = Date.now() / 1000) {
  const recent = (job) => now - (job.updated_at ?? 0) < RECENT_FAILURE_S;
  const shown = (job) => job.state === "active" || (job.state === "failed" && recent(job));
  const all = jobs ?? [];
  const live = new Set(all.filter((job) => job.model && shown(job)).map((job) => job.model.id));
  return all.filter((job) => shown(job) || (job.model && live.has(job.model.id)));
}

/** Jobs (newest first) as entries: a file of a model of several files (`job.model`,
 *  from manage.jobs) joins its model's entry ({model, files, state, loaded, total,
 *  error}: the newest job per file, sums, failed when a file failed, naming it). */
export function jobEntries(jobs) {
  const entries = [];
  const sets = new Map();
  for (const job of jobs ?? []) {
    if (!job.model) {
      entries.push(job);
      continue;
    }
    let entry = sets.get(job.model.id);
    if (!entry) {
      entry = { model: job.model, files: [] };
      sets.set(job.model.id, entry);
      entries.push(entry);
    }
    if (!entry.files.some((f) => f.sha256 === job.sha256)) entry.files.push(job);
  }
  for (const entry of sets.values()) Object.assign(entry, modelSummary(entry.files));
  return entries;
}

function modelSummary(files) {
  const failed = files.find((f) => f.state === "failed");
  const totals = files.map((f) => f.total);
  const known = totals.every((t) => Number.isFinite(t) && t > 0);
  return {
    state: failed ? "failed" : files.some((f) => f.state === "active") ? "active" : "done",
    loaded: files.reduce((sum, f) => sum + (f.loaded ?? 0), 0),
    total: known ? totals.reduce((sum, t) => sum + t, 0) : null,
    background: files.every((f) => f.background),
    error: failed ? { ...(failed.error ?? { code: "download_failed" }), file: failed.model.path } : null,
  };
}

export function downloadsView(jobs, models) {
  const names = new Map((models ?? []).map((m) => [m.sha256, m]));
  return jobEntries(jobs).map((job) => (job.files ? modelJobView(job) : fileJobView(job, names)));
}

/** One entry for a model of several files: summed progress, its files listed. */
function modelJobView(entry) {
  const { name, version, id } = entry.model;
  const title = name ? `${name}@${version}` : "model";
  const known = Number.isFinite(entry.total) && entry.total > 0;
  const failed = entry.state === "failed";
  const bar = known ? h("progress", { max: entry.total, value: entry.loaded }) : h("progress");
  const files = entry.files.map((f) =>
    h(
      "li",
      { class: `job-file ${f.state}`, dataset: { path: f.model.path, state: f.state } },
      h("span", {}, f.model.path),
      h("span", { class: "job-source" }, f.state === "failed" ? "failed" : jobAmount(f, f.total > 0)),
    ),
  );
  return h(
    "li",
    { class: `job model-job ${entry.state}`, dataset: { model: id, state: entry.state } },
    h(
      "div",
      { class: "row" },
      h("span", { class: "job-title" }, title),
      failed ? h("span", { class: "badge bad" }, "failed") : null,
      h("span", { class: "job-source" }, count(entry.model.files, "file")),
    ),
    failed ? null : bar,
    h(
      "div",
      { class: "row meta" },
      failed
        ? h("span", { class: "error-text" }, `${entry.error.file}: ${jobError(entry.error)}`)
        : h("span", {}, jobAmount(entry, known)),
      entry.background ? h("span", { class: "badge" }, "background") : null,
    ),
    h("details", { class: "job-files" }, h("summary", {}, "files"), h("ul", {}, ...files)),
  );
}

function fileJobView(job, names) {
  const model = names.get(job.sha256);
  const url = job.urls?.[0];
  const title = model ? modelTitle(model) : fileName(url) || `sha256:${shortHash(job.sha256)}`;
  const known = Number.isFinite(job.total) && job.total > 0;
  // Without a known total the bar is indeterminate (no value), as <progress> defines.
  const bar = known ? h("progress", { max: job.total, value: job.loaded ?? 0 }) : h("progress");
  const failed = job.state === "failed";
  return h(
    "li",
    { class: `job ${job.state}`, dataset: { sha256: job.sha256, state: job.state } },
    h(
      "div",
      { class: "row" },
      h("span", { class: "job-title" }, title),
      failed ? h("span", { class: "badge bad" }, "failed") : null,
      h("span", { class: "job-source", title: url ?? "" }, url ? hostOf(url) : ""),
    ),
    failed ? null : bar,
    h(
      "div",
      { class: "row meta" },
      failed ? h("span", { class: "error-text" }, jobError(job.error)) : h("span", {}, jobAmount(job, known)),
      job.background ? h("span", { class: "badge" }, "background") : null,
    ),
  );
}

function jobAmount(job, known) {
  const loaded = job.loaded ?? 0;
  if (known) return `${formatBytes(loaded)} of ${formatBytes(job.total)} · ${percent(loaded, job.total)}%`;
  return job.loaded ? formatBytes(job.loaded) : "starting…";
}

function jobError(error) {
  if (!error) return "failed";
  if (typeof error === "string") return error;
  return [error.code, error.message].filter(Boolean).join(": ");
}

function hostOf(url) {
  try {
    return new URL(url).host;
  } catch {
    return "";
  }
}

/** Where each model was last downloaded from (jobs of the last day): sha256 → URL. */
export function downloadOrigins(jobs) {
  const urls = new Map();
  for (const job of jobs ?? []) {
    const first = job.state === "done" && job.urls?.length && !urls.has(job.sha256);
    if (first) urls.set(job.sha256, job.urls[0]);
  }
  return urls;
}

/** The sites that obtained models: top-level site → its frames' origins and models. */
export function sitesOf(models) {
  const sites = new Map();
  for (const model of models ?? []) {
    for (const site of model.sites ?? []) {
      const entry = sites.get(site.top_site) ?? {
        top_site: site.top_site,
        origins: new Set(),
        models: new Map(),
      };
      entry.origins.add(site.origin);
      entry.models.set(model.sha256, model);
      sites.set(site.top_site, entry);
    }
  }
  return [...sites.values()].sort((a, b) => a.top_site.localeCompare(b.top_site));
}

export function sitesView(sites, ui, actions) {
  return sites.map((site) => {
    const key = `site:${site.top_site}`;
    const models = [...site.models.values()];
    const bytes = models.reduce((sum, m) => sum + (m.size ?? 0), 0);
    const frames = [...site.origins].filter((o) => o !== site.top_site);
    const busy = ui.busy.has(key);
    return h(
      "li",
      { class: "site", dataset: { topSite: site.top_site } },
      h(
        "div",
        { class: "site-text" },
        h("span", { class: "site-name", title: site.top_site }, siteLabel(site.top_site)),
        h("span", { class: "site-meta" }, `${count(models.length, "model")} · ${formatBytes(bytes)}`),
        frames.length ? h("span", { class: "frames" }, `frames: ${frames.map(siteLabel).join(", ")}`) : null,
      ),
      ui.confirm.has(key)
        ? confirmBox({
            text:
              `Forget what ${siteLabel(site.top_site)} stored? ` +
              "Models no other site uses are deleted (pinned ones stay).",
            yes: "Forget site",
            yesAction: "confirm-clear",
            busy,
            onYes: () => actions.confirmClear(site.top_site),
            onNo: () => actions.cancelClear(site.top_site),
          })
        : button("Forget site", "clear-site", () => actions.askClear(site.top_site), {
            busy,
            tone: "ghost danger",
          }),
    );
  });
}

export function catalogsView(catalogs, ui, actions) {
  if (catalogs.length === 0) return [h("li", { class: "empty" }, "No catalogs yet: add one a publisher gave you.")];
  return catalogs.map((catalog) => {
    const key = `catalog:${catalog.name}`;
    const busy = ui.busy.has(key);
    const state = catalog.expired ? `expired ${catalog.expires.slice(0, 10)}` : `until ${catalog.expires.slice(0, 10)}`;
    return h(
      "li",
      { class: "catalog", dataset: { catalog: catalog.name } },
      h(
        "div",
        { class: "site-text" },
        h("span", { class: "site-name", title: catalog.source ?? "" }, catalog.name),
        h("span", { class: "site-meta" }, `version ${catalog.version} · ${count(catalog.models, "model")} · ${state}`),
      ),
      ui.confirm.has(key)
        ? confirmBox({
            text: `Stop trusting ${catalog.name}? Its names stop resolving; stored models stay.`,
            yes: "Remove",
            yesAction: "confirm-remove-catalog",
            busy,
            onYes: () => actions.removeCatalog(catalog.name),
            onNo: () => actions.cancelRemoveCatalog(catalog.name),
          })
        : button("Remove", "remove-catalog", () => actions.askRemoveCatalog(catalog.name), { busy, tone: "ghost danger" }),
    );
  });
}
