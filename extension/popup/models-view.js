// The "Models" list: one card per stored model, with its badges, the sites using it,
// sharing, pin and delete (with its confirm steps). popup.js keeps the state; `actions`
// carries the click handlers.

import { h } from "./dom.js";
import { diskLine, formatBytes, modelTitle, shortHash, siteLabel, timeAgo } from "./format.js";
import { button, confirmBox } from "./widgets.js";

/** The list with each form the host derived (`derived_from`, manage.list) right after
 *  the model it is a form of, when that model is listed too; such a form gets
 *  `form_of` (its model), which groups it under that model's name. */
export function withForms(models) {
  const listed = new Map(models.map((model) => [model.sha256, model]));
  const under = new Map();
  for (const model of models) {
    const source = model.derived_from && listed.get(model.derived_from);
    if (source && source !== model) under.set(source.sha256, [...(under.get(source.sha256) ?? []), model]);
  }
  const placed = new Set([...under.values()].flat().map((model) => model.sha256));
  return models.flatMap((model) =>
    placed.has(model.sha256)
      ? []
      : [model, ...(under.get(model.sha256) ?? []).map((form) => ({ ...form, form_of: model }))],
  );
}

/** One card per model; `ui.confirm` maps a sha256 to the delete step shown,
 *  `ui.from` a sha256 to the URL it came from. */
export function modelsView(models, ui, actions) {
  return models.map((model) => modelCard(model, ui, actions));
}

function modelCard(model, ui, actions) {
  const from = model.preinstalled_path ? null : ui.from?.get(model.sha256);
  const busy = ui.busy.has(model.sha256);
  const step = ui.confirm.get(model.sha256);
  return h(
    "li",
    {
      class: `model${model.pinned ? " pinned" : ""}${model.form_of ? " form" : ""}`,
      dataset: { sha256: model.sha256, pinned: String(model.pinned), derivedFrom: model.derived_from ?? "" },
    },
    h(
      "div",
      { class: "row" },
      h("span", { class: "model-title", title: model.sha256 }, modelTitle(model)),
      model.version ? h("span", { class: "version" }, model.version) : null,
      h("span", { class: "model-size" }, formatBytes(model.size)),
    ),
    badges(model),
    diskLine(model) ? h("p", { class: "disk" }, diskLine(model)) : null,
    model.form_of ? h("p", { class: "form-of" }, `${formLabel(model)} of ${modelTitle(model.form_of)}`) : null,
    from ? h("p", { class: "path from", title: from }, `from ${withoutScheme(from)}`) : null,
    sitesLine(model),
    model.preinstalled_path
      ? h("p", { class: "path", title: model.preinstalled_path }, `in place at ${model.preinstalled_path}`)
      : null,
    sharedLine(model, busy, actions),
    step === "share"
      ? shareForm(model, busy, actions)
      : step
        ? deleteConfirm(model, step, busy, actions)
        : modelActions(model, busy, actions),
  );
}

/** The sites the user shared this model with, each with a button to take it back. */
function sharedLine(model, busy, actions) {
  const shared = model.shared_with ?? [];
  if (!shared.length) return null;
  return h(
    "ul",
    { class: "sites shared", "aria-label": "sites this model is shared with" },
    shared.map((site) =>
      h(
        "li",
        { class: "site-chip shared", dataset: { sharedWith: site }, title: `shared with ${site}` },
        `shared with ${siteLabel(site)} `,
        button("×", "unshare", () => actions.share(model, site, false), {
          busy,
          tone: "ghost small",
          title: `Stop sharing with ${site}`,
        }),
      ),
    ),
  );
}

/** Share with a site: it may then use the model without downloading it (docs/design.md#privacy). */
function shareForm(model, busy, actions) {
  const input = h("input", {
    type: "url",
    class: "share-input",
    placeholder: "https://example.com",
    "aria-label": "site to share with",
    spellcheck: false,
  });
  return h(
    "div",
    { class: "confirm share", role: "dialog", dataset: { step: "share" } },
    h("p", {}, `Let a site use ${modelTitle(model)} without downloading it. That site learns you have it.`),
    input,
    h(
      "div",
      { class: "actions" },
      button("Cancel", "cancel", () => actions.cancelShare(model), { busy, tone: "ghost" }),
      button("Share", "confirm-share", () => actions.share(model, input.value.trim(), true), { busy }),
    ),
  );
}

// Where a model's bytes came from, in the user's words (the badge's tooltip). A model
// that a site downloaded is the one copy every other site that may use it (a common
// or shared model) gets without a download.
const SOURCE_WORDS = {
  downloaded:
    "Downloaded once by a site. Sites that may use it too (a common model, or shared " +
    "with them) get this stored copy — no download.",
  preinstalled: "Pre-installed on this computer and used in place: every site may use it, no download.",
  imported: "Imported by you with `webmodels import`.",
};

const FORM_WORDS =
  "Another form of a model (another precision, opset or format), made by this computer " +
  "when a site's runtime asked for it, or by you with `webmodels derive`, or published " +
  "beside the model by its catalog (catalog).";

/** "fp16 form", "int8 ort form", "fp32 opset 17 form"; "q4 form (catalog)" for a form
 *  a catalog declares (its publisher made it), as `webmodels ls` badges it. */
export function formLabel(model) {
  const { dtype, format, opset, source } = model.representation ?? {};
  const label = [dtype, format && format !== "onnx" ? format : null, opset ? `opset ${opset}` : null, "form"]
    .filter(Boolean)
    .join(" ");
  return source === "catalog" ? `${label} (catalog)` : label;
}

function badges(model) {
  const missing = model.stored === false && !model.preinstalled_path;
  return h(
    "div",
    { class: "badges" },
    h("span", { class: `badge source-${model.source}`, title: SOURCE_WORDS[model.source] }, model.source),
    model.representation ? h("span", { class: "badge form", title: FORM_WORDS }, formLabel(model)) : null,
    model.format ? h("span", { class: "badge" }, model.format) : null,
    model.pinned ? h("span", { class: "badge pin" }, "pinned") : null,
    model.quarantined ? h("span", { class: "badge bad" }, "quarantined") : null,
    missing ? h("span", { class: "badge bad" }, "not stored") : null,
    // An unnamed model's title is its short hash already.
    model.name ? h("span", { class: "hash", title: model.sha256 }, shortHash(model.sha256)) : null,
  );
}

function sitesLine(model) {
  const sites = model.sites ?? [];
  if (!sites.length) {
    const why = model.source === "preinstalled" ? "every site may use it" : "no site uses it yet";
    return h("p", { class: "sites none" }, why);
  }
  return h(
    "ul",
    { class: "sites", "aria-label": "sites using this model" },
    sites.map((site) => {
      const framed = site.origin && site.origin !== site.top_site;
      return h(
        "li",
        {
          class: "site-chip",
          dataset: { topSite: site.top_site, origin: site.origin },
          title: framed ? `${site.origin} in a frame of ${site.top_site}` : site.top_site,
        },
        siteLabel(site.top_site),
        framed ? h("span", { class: "frame" }, ` ↳ ${siteLabel(site.origin)}`) : null,
      );
    }),
  );
}

function modelActions(model, busy, actions) {
  const readOnly = model.source === "preinstalled";
  return h(
    "div",
    { class: "actions" },
    model.created_at ? h("span", { class: "when" }, `added ${timeAgo(model.created_at)}`) : null,
    button(model.pinned ? "Unpin" : "Pin", "pin", () => actions.pin(model, !model.pinned), {
      busy,
      tone: "ghost",
      title: model.pinned ? "Let the store remove it when it needs room" : "Keep it: never removed to make room",
    }),
    button("Share…", "share", () => actions.askShare(model), {
      busy,
      tone: "ghost",
      title: "Let a site use it without downloading it",
    }),
    button("Delete", "delete", () => actions.askDelete(model), {
      busy,
      disabled: readOnly,
      tone: "ghost danger",
      title: readOnly ? "Pre-installed: remove it from its models.json instead" : "Delete it from the store",
    }),
  );
}

function deleteConfirm(model, step, busy, actions) {
  const force = step === "force";
  return confirmBox({
    text: force
      ? `${modelTitle(model)} is pinned. Delete it anyway?`
      : `Delete ${modelTitle(model)} (${formatBytes(model.size)})? Sites using it will have to download it again.`,
    yes: force ? "Delete pinned model" : "Delete",
    yesAction: force ? "confirm-force" : "confirm-delete",
    busy,
    warn: force,
    step,
    onYes: () => actions.confirmDelete(model),
    onNo: () => actions.cancelDelete(model),
  });
}

function withoutScheme(url) {
  return String(url).replace(/^https?:\/\//, "");
}
