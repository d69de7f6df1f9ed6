// The "Common models" section: the signed commons lists, one per trusted key, and
// whether each is in force (a model on a list in force is visible to every site,
// within the probe budget; `webmodels commons` adds and removes lists).

import { h } from "./dom.js";

export function commonsView(lists) {
  if (lists.length === 0) return [h("li", { class: "empty" }, "No commons list: only your own and pre-installed models are shared.")];
  return lists.map((list) => {
    const who = list.project ? "The project's list" : "Your list";
    const meta = list.in_force
      ? `in force · version ${list.version} · ${list.entries} ${list.entries === 1 ? "model" : "models"} · until ${list.expires.slice(0, 10)}`
      : `not in force: ${list.problem}`;
    return h(
      "li",
      { class: "commons-list", dataset: { key: list.key_id, inForce: String(list.in_force) } },
      h(
        "div",
        { class: "site-text" },
        h("span", { class: "site-name", title: `key ${list.key_id}` }, `${who} (key ${list.key_id.slice(0, 8)})`),
        h("span", { class: "site-meta" }, meta),
      ),
    );
  });
}
