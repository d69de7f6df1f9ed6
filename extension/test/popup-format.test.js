import assert from "node:assert/strict";
import { test } from "node:test";

import { fileName, formatBytes, modelTitle, percent, siteLabel, timeAgo } from "../popup/format.js";
import { downloadOrigins, jobEntries, sitesOf, visibleJobs } from "../popup/views.js";

const SHA_A = "a".repeat(64);
const SHA_B = "b".repeat(64);

test("sizes are binary and keep three significant digits", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(1023), "1023 B");
  assert.equal(formatBytes(1024), "1.00 KiB");
  assert.equal(formatBytes(200_000), "195 KiB");
  assert.equal(formatBytes(3_163_737), "3.02 MiB");
  assert.equal(formatBytes(10 * 1024 ** 2), "10.0 MiB");
  assert.equal(formatBytes(123_456_789_012), "115 GiB");
  assert.equal(formatBytes(-1), "—");
  assert.equal(formatBytes(Number.NaN), "—");
});

test("a model is called by its name, else by its short hash", () => {
  assert.equal(modelTitle({ name: "google/magika", sha256: SHA_A }), "google/magika");
  assert.equal(modelTitle({ name: null, sha256: SHA_A }), `sha256:${"a".repeat(12)}`);
});

test("sites drop https:// but show any other scheme", () => {
  assert.equal(siteLabel("https://a.example"), "a.example");
  assert.equal(siteLabel("http://127.0.0.1:8000"), "http://127.0.0.1:8000");
  assert.equal(siteLabel("not a url"), "not a url");
});

test("percent, time ago and file names", () => {
  assert.equal(percent(1, 3), 33);
  assert.equal(percent(5, 0), 0);
  assert.equal(percent(7, 5), 100);
  assert.equal(timeAgo(1000, 1030), "just now");
  assert.equal(timeAgo(1000, 1000 + 5 * 60), "5 min ago");
  assert.equal(timeAgo(0, 86_400 * 3), "3 days ago");
  assert.equal(fileName("https://cdn.example/m/model.onnx?x=1"), "model.onnx");
});

test("the sites view groups models by top-level site, frames included", () => {
  const models = [
    { sha256: SHA_A, size: 10, sites: [{ top_site: "https://b.example", origin: "https://b.example" }] },
    {
      sha256: SHA_B,
      size: 20,
      sites: [
        { top_site: "https://b.example", origin: "https://widget.example" },
        { top_site: "https://a.example", origin: "https://a.example" },
      ],
    },
  ];
  const sites = sitesOf(models);
  assert.deepEqual(
    sites.map((s) => s.top_site),
    ["https://a.example", "https://b.example"],
  );
  assert.deepEqual([...sites[1].models.keys()], [SHA_A, SHA_B]);
  assert.deepEqual([...sites[1].origins], ["https://b.example", "https://widget.example"]);
});

test("downloads shown: running ones and recent failures; origins from finished ones", () => {
  const now = 10_000;
  const jobs = [
    { id: "1", sha256: SHA_A, state: "active", updated_at: now - 99_999 },
    { id: "2", sha256: SHA_A, state: "failed", updated_at: now - 60 },
    { id: "3", sha256: SHA_B, state: "failed", updated_at: now - 3600 },
    { id: "4", sha256: SHA_B, state: "done", updated_at: now, urls: ["https://cdn.example/b.onnx"] },
    { id: "5", sha256: SHA_B, state: "done", updated_at: now - 5, urls: ["https://old.example/b.onnx"] },
  ];
  assert.deepEqual(
    visibleJobs(jobs, now).map((j) => j.id),
    ["1", "2"],
  );
  assert.deepEqual([...downloadOrigins(jobs)], [[SHA_B, "https://cdn.example/b.onnx"]]);
});

test("a model of several files is one download: files summed, a failed file named", () => {
  const now = 10_000;
  const model = (path) => ({ id: "m1", name: "t/chain", version: "1.0.0", files: 2, path });
  const jobs = [
    { id: "3", sha256: SHA_B, state: "failed", loaded: 5, total: 20, updated_at: now - 5,
      error: { code: "download_failed", message: "HTTP 404" }, model: model("model.onnx_data") },
    { id: "2", sha256: SHA_A, state: "done", loaded: 10, total: 10, updated_at: now - 9, model: model("model.onnx") },
    { id: "1", sha256: SHA_A, state: "done", loaded: 10, total: 10, updated_at: now - 99 },
  ];
  // The model's finished file stays with its failed one; a lone finished job does not.
  const shown = visibleJobs(jobs, now);
  assert.deepEqual(shown.map((j) => j.id), ["3", "2"]);
  const [entry] = jobEntries(shown);
  assert.equal(entry.model.name, "t/chain");
  assert.deepEqual(entry.files.map((f) => f.model.path), ["model.onnx_data", "model.onnx"]);
  assert.equal(entry.state, "failed");
  assert.deepEqual([entry.loaded, entry.total], [15, 30]);
  assert.deepEqual(entry.error, { code: "download_failed", message: "HTTP 404", file: "model.onnx_data" });
});
