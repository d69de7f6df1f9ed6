// Exercises navigator.crossOriginStorage as the spec's IDL describes it, in a window or
// (imported by cos-idl-worker.js) in a Web Worker; tests/e2e/test_cos_idl.py passes the
// IDL as webidl2 parsed it and checks what this returns.
"use strict";

self.cosIdlProbe = async (spec) => {
  const cos = navigator.crossOriginStorage;
  const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
  const randomFile = async () => {
    const bytes = crypto.getRandomValues(new Uint8Array(4096));
    return { bytes, value: hex(await crypto.subtle.digest("SHA-256", bytes)) };
  };
  const outcome = async (promise) => {
    try {
      const value = await promise;
      return { ok: true, kind: value?.kind ?? null, name: value?.name ?? null };
    } catch (error) {
      return { ok: false, error: error?.name ?? String(error), isDOMException: error instanceof DOMException };
    }
  };

  // What each hash member's absence, and each option member, does (the option
  // members exercised here are reported, so the test sees a member it does not know).
  async function exercise(method) {
    const call = (...args) => cos[method](...args);
    const absent = await randomFile();
    const hash = (value, algorithm = "SHA-256") => ({ algorithm, value });
    const out = {
      type: typeof cos[method],
      length: cos[method]?.length ?? null,
      missingMember: {},
      lookupAbsent: await outcome(call(hash(absent.value))),
      createFalseAbsent: await outcome(call(hash(absent.value), { create: false })),
      badValue: await outcome(call(hash("not-hex"))),
      otherAlgorithm: await outcome(call(hash(absent.value, "SHA-1"))),
      notADictionary: await outcome(call("sha256-" + absent.value)),
    };
    for (const member of spec.hashMembers) {
      const partial = hash(absent.value);
      delete partial[member];
      out.missingMember[member] = await outcome(call(partial));
    }
    // create: true gives a writable handle; origins is accepted in both forms.
    const stored = await randomFile();
    const options = { create: true, origins: "*" };
    out.exercisedOptions = Object.keys(options);
    const created = await call(hash(stored.value.toUpperCase(), "sha-256"), options); // algorithm/value case
    out.created = { kind: created.kind, name: created.name };
    const writable = await created.createWritable();
    await writable.write(new Blob([stored.bytes]));
    await writable.close();
    const found = await call(hash(stored.value));
    out.readBack = hex(await crypto.subtle.digest("SHA-256", await (await found.getFile()).arrayBuffer())) === stored.value;
    out.storedSha256 = stored.value;
    out.originsList = await outcome(call(hash(stored.value), { create: true, origins: ["https://x.example"] }));
    return out;
  }

  const result = { sameObject: navigator.crossOriginStorage === navigator.crossOriginStorage, methods: {} };
  result.attributeOn = "crossOriginStorage" in navigator;
  for (const method of spec.methods) {
    try {
      result.methods[method] = await exercise(method);
    } catch (error) {
      result.methods[method] = { type: typeof cos?.[method], failed: `${error?.name}: ${error?.message}` };
    }
  }
  return result;
};
