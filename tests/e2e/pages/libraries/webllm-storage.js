// Drives WebLLM's own storage code (@mlc-ai/web-llm as published on npm, served by
// tests/e2e/test_webllm.py) with cacheBackend "cross-origin": its artifact cache
// stores a model's tensor-cache.json and weight shards as WebLLM's fetchTensorCache
// does, and hasModelInCache says whether the model is there. No inference: that needs
// a compiled model library, which cannot be fetched here.

/** Counts the calls WebLLM makes to navigator.crossOriginStorage (by method name). */
function countCalls() {
  const cos = navigator.crossOriginStorage;
  const calls = {};
  for (const name of ["getFileHandle", "requestFileHandle", "requestFileHandles"]) {
    const method = cos?.[name];
    if (typeof method !== "function") continue;
    calls[name] = 0;
    cos[name] = function (...args) {
      calls[name] += 1;
      return method.apply(this, args);
    };
  }
  return calls;
}

const appConfig = (models) => ({
  cacheBackend: "cross-origin",
  model_list: models.map(({ modelId, modelUrl }) => ({ model: modelUrl, model_id: modelId, model_lib: `${modelUrl}/lib.wasm` })),
});

/** Stores each model's files through WebLLM's artifact cache, as its
 *  fetchTensorCache does: tensor-cache.json, then each shard the records name. */
export async function store({ lib, models }) {
  const calls = countCalls();
  const webllm = await import(lib);
  const tvmjs = webllm.__tvmjs; // WebLLM's bundled runtime library (see test_webllm.py)
  const config = appConfig(models);
  const cache = tvmjs.createArtifactCache("webllm/model", { cacheType: "cross-origin" });
  const result = { cacheClass: cache.constructor.name, before: {}, after: {}, calls };
  for (const { modelId, modelUrl } of models) {
    result.before[modelId] = await webllm.hasModelInCache(modelId, config);
    const base = `${modelUrl}/resolve/main/`;
    const list = await cache.fetchWithCache(new URL("tensor-cache.json", base).href, "json");
    for (const record of list.records) await cache.addToCache(new URL(record.dataPath, base).href, "arraybuffer");
    result.after[modelId] = await webllm.hasModelInCache(modelId, config);
  }
  return result;
}

/** What another site's WebLLM finds: hasModelInCache, and each shard's bytes' SHA-256. */
export async function find({ lib, models }) {
  const calls = countCalls();
  const webllm = await import(lib);
  const config = appConfig(models);
  const cache = webllm.__tvmjs.createArtifactCache("webllm/model", { cacheType: "cross-origin" });
  const result = { cacheClass: cache.constructor.name, found: {}, shards: {}, calls };
  for (const { modelId, modelUrl, shards } of models) {
    result.found[modelId] = await webllm.hasModelInCache(modelId, config);
    for (const shard of shards) {
      const url = new URL(shard, `${modelUrl}/resolve/main/`).href;
      const hit = await cache.storage?.match(url); // WebLLM's CrossOriginStorage, no download
      result.shards[`${modelId}/${shard}`] = hit === undefined ? null : hex(await crypto.subtle.digest("SHA-256", await hit.arrayBuffer()));
    }
  }
  return result;
}

const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
