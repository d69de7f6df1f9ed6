// The demo site: loads one model through window.webmodels and shows what came back.
// Query parameters: model (URL), integrity ("sha256-<base64>") or spec (name@range), size (bytes),
// name (what to call it), autorun=1 (load at once instead of on a click).
// For scripts: body[data-state] is starting | ready | loading | done | error, and
// #result holds the outcome as JSON once it is done or failed.

const API_WAIT_MS = 10_000;
const $ = (id) => document.getElementById(id);
const params = new URL(location.href).searchParams;
// spec=publisher/model@range asks by name (resolved through the catalogs) instead.
const spec = params.get("spec");
const query = spec
  ? { name: spec.split("@")[0], version: spec.split("@")[1] ?? "*" }
  : { url: params.get("model"), integrity: params.get("integrity") };
const size = Number(params.get("size")) || null;
const events = [];
let started = 0;

function setState(state, text) {
  document.body.dataset.state = state;
  if (text) $("status").textContent = text;
}

function mib(bytes) {
  return `${(bytes / 1048576).toFixed(2)} MiB`;
}

/** window.webmodels appears at document_start; give a slow extension a moment. */
async function waitForApi() {
  const until = performance.now() + API_WAIT_MS;
  while (!window.webmodels && performance.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return window.webmodels ?? null;
}

/** Like Chrome's built-in AI: `loaded` is a fraction of `total` (which may be 1). */
function onProgress(event) {
  const fraction = event.total > 0 ? event.loaded / event.total : 0;
  const bytes = event.total > 1 ? event.loaded : size ? Math.round(fraction * size) : null;
  events.push({ t: Math.round(performance.now() - started), loaded: event.loaded, total: event.total, bytes });
  $("progress").value = fraction;
  $("amount").textContent = bytes === null ? `${Math.round(fraction * 100)} %` : `${mib(bytes)} · ${Math.round(fraction * 100)} %`;
  setState("loading", "Downloading into the shared store…");
}

async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest("SHA-256", buffer);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function tensors(list) {
  return (list ?? []).map((t) => `${t.name}: ${t.type}[${(t.dims ?? []).join(", ")}]`).join("; ");
}

function showInfo(info, readBack, ms) {
  const facts = [
    ["name", info.name ? `${info.name} ${info.version ?? ""}` : "(no name: asked for by URL)"],
    ["sha256", info.sha256],
    ["size", `${info.size.toLocaleString("en")} bytes (${mib(info.size)})`],
    ["format", info.format],
    ["source", info.source],
    ["inputs", tensors(info.inputs)],
    ["outputs", tensors(info.outputs)],
    ["opsets", Object.entries(info.opsets ?? {}).map(([k, v]) => `${k} ${v}`).join(", ")],
    ["producer", info.producer ?? ""],
    ["load time", `${ms} ms, ${events.length} progress events`],
  ];
  if (readBack) facts.push(["bytes in the page", readBack.text, readBack.ok ? "ok" : ""]);
  $("facts").replaceChildren(
    ...facts.flatMap(([label, value, tone]) => {
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = value;
      if (tone) dd.className = tone;
      return [dt, dd];
    }),
  );
  $("info").hidden = false;
}

/** Read the bytes back through model.arrayBuffer() and hash them here. */
async function readBack(model, expected) {
  if (typeof model.arrayBuffer !== "function") return null;
  const t0 = performance.now();
  const buffer = await model.arrayBuffer();
  const hex = await sha256Hex(buffer);
  const ms = Math.round(performance.now() - t0);
  const ok = hex === expected;
  return { ok, bytes: buffer.byteLength, ms, text: `${buffer.byteLength.toLocaleString("en")} bytes read in ${ms} ms; SHA-256 ${ok ? "matches" : "DIFFERS"}` };
}

async function load(api) {
  $("load").disabled = true;
  events.length = 0;
  started = performance.now();
  setState("loading", "Asking the store…");
  const result = { origin: location.origin, events };
  try {
    const model = await api.load(query, { monitor: (m) => m.addEventListener("downloadprogress", onProgress) });
    const ms = Math.round(performance.now() - started);
    result.ms = ms;
    result.info = model.info;
    $("progress").value = 1;
    result.read_back = await readBack(model, model.info.sha256);
    showInfo(model.info, result.read_back, ms);
    setState(result.read_back?.ok === false ? "error" : "done", `Loaded in ${ms} ms.`);
  } catch (error) {
    result.error = { name: error?.name, code: error?.webmodelsCode, message: error?.message ?? String(error) };
    $("failure-text").textContent = `${error?.name ?? "Error"}: ${error?.message ?? error}`;
    $("failure").hidden = false;
    setState("error", "Failed.");
  } finally {
    $("result").textContent = JSON.stringify(result);
    $("load").disabled = false;
  }
}

async function main() {
  $("origin").textContent = location.origin;
  $("model-name").textContent = params.get("name") ?? spec ?? "a model";
  $("model-url").textContent = spec ? `${spec} (by name, through the catalogs)` : query.url ?? "(no ?model= URL given)";
  const api = await waitForApi();
  if (!api) {
    $("failure-text").textContent = "window.webmodels is missing: the webmodels extension is not installed in this browser.";
    $("failure").hidden = false;
    setState("error", "No webmodels extension.");
    $("result").textContent = JSON.stringify({ error: { name: "NotSupportedError", message: "no window.webmodels" } });
    return;
  }
  $("load").disabled = !(query.url || query.name);
  $("load").addEventListener("click", () => load(api));
  setState("ready", "Ready: press “Load model”.");
  if (params.get("autorun") === "1") load(api);
}

main();
