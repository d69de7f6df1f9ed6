// Drives Transformers.js' own Cross-Origin Storage cache (src/utils/cache/
// CrossOriginStorageCache.js of @huggingface/transformers as published on npm, served
// by tests/e2e/test_transformers_js.py): put() stores a model file under the SHA-256
// its Git LFS pointer names, match() finds it, as the library does when it caches
// model files with env.experimental_useCrossOriginStorage.

const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");

/** Counts the calls the library makes to navigator.crossOriginStorage (by method name). */
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

async function matched(cache, url) {
  const hit = await cache.match(url);
  return hit === undefined ? null : hex(await crypto.subtle.digest("SHA-256", await hit.arrayBuffer()));
}

/** Stores each file with put(url, response) unless `lookOnly`; reports what match() finds. */
export async function run({ module, urls, lookOnly }) {
  const calls = countCalls();
  const { CrossOriginStorage } = await import(module);
  const cache = new CrossOriginStorage();
  const result = { available: CrossOriginStorage.isAvailable(), before: {}, after: {}, calls };
  for (const url of urls) result.before[url] = await matched(cache, url);
  if (!lookOnly) {
    for (const url of urls) await cache.put(url, await fetch(url));
    for (const url of urls) result.after[url] = await matched(cache, url);
  }
  return result;
}
