import assert from "node:assert/strict";
import { test } from "node:test";

import { groupByModel } from "../popup/model-pages.js";
import { formLabel, withForms } from "../popup/models-view.js";

const model = (c, extra = {}) => ({ sha256: c.repeat(64), name: null, version: null, ...extra });

test("a derived form is listed right under its model, in that model's group", () => {
  const source = model("a", { name: "acme/m", version: "1.0.0" });
  const form = model("0", { derived_from: source.sha256, representation: { dtype: "fp16" } });
  const other = model("c", { name: "zed/x", version: "2.0.0" });
  const listed = withForms([form, source, other]);
  assert.deepEqual(
    listed.map((m) => m.sha256),
    [source.sha256, form.sha256, other.sha256],
  );
  assert.equal(listed[1].form_of, source);
  const groups = groupByModel(listed);
  assert.deepEqual(
    groups.map((g) => [g.name, g.files.length]),
    [["acme/m", 2], ["zed/x", 1]],
  );
});

test("a form whose model is not on this page stays where it is, on its own", () => {
  const form = model("0", { derived_from: "f".repeat(64), representation: { dtype: "int8" } });
  const listed = withForms([form, model("a")]);
  assert.deepEqual(listed.map((m) => m.sha256), ["0".repeat(64), "a".repeat(64)]);
  assert.equal(listed[0].form_of, undefined);
});

test("a form's badge says what it is, and that its catalog made it when one did", () => {
  const derived = model("0", { representation: { dtype: "q4", format: "onnx", opset: null } });
  const declared = model("1", { representation: { dtype: "fp16", format: "ort", opset: 17, source: "catalog" } });
  assert.equal(formLabel(derived), "q4 form");
  assert.equal(formLabel(declared), "fp16 ort opset 17 form (catalog)");
});
