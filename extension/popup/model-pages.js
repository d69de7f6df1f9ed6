// The popup's list of stored files a page at a time: `manage.list` with `limit`,
// `cursor` and the search box's `query` (matched host-side: the start of a SHA-256 or
// part of a name). The host orders by name, version, then SHA-256, so a model's files
// arrive side by side and `groupByModel` only has to cut the list where the model
// changes. More is loaded when the end of the list scrolls near (`watchEnd`).

import { h } from "./dom.js";

export const PAGE_SIZE = 100;
const MAX_PAGE = 500; // the host's largest `limit`
const SEARCH_DELAY_MS = 150;

export class ModelPages {
  #client;
  #loading = null;
  #generation = 0; // bumped by each reload: a page asked for before it is dropped
  models = [];
  next = null; // the host's cursor for the page after those loaded, or null
  query = "";

  constructor(client) {
    this.#client = client;
  }

  /** Load the list again from its start, as many files as were loaded before. */
  async reload() {
    const wanted = Math.max(PAGE_SIZE, this.models.length);
    const query = this.query;
    const generation = ++this.#generation;
    const models = [];
    let cursor = null;
    do {
      const limit = Math.min(MAX_PAGE, wanted - models.length);
      const page = await this.#page({ limit, cursor, query });
      models.push(...page.models);
      cursor = page.next_cursor;
    } while (cursor && models.length < wanted);
    if (generation !== this.#generation) return false; // a later reload or search wins
    this.models = models;
    this.next = cursor;
    return true;
  }

  /** Append the next page; false when there is none (or one is on its way). */
  async more() {
    if (!this.next || this.#loading) return false;
    const generation = this.#generation;
    this.#loading = this.#page({ limit: PAGE_SIZE, cursor: this.next, query: this.query });
    try {
      const page = await this.#loading;
      if (generation !== this.#generation) return false;
      this.models = [...this.models, ...page.models];
      this.next = page.next_cursor;
      return true;
    } finally {
      this.#loading = null;
    }
  }

  /** Start over with what the user typed; resolves once its first page is in. */
  search(text) {
    this.query = text.trim();
    this.models = [];
    this.next = null;
    return this.reload();
  }

  #page({ limit, cursor, query }) {
    const params = { limit };
    if (cursor) params.cursor = cursor;
    if (query) params.query = query;
    return this.#client.call("manage.list", params);
  }
}

/** [{name, version, files}] in list order: consecutive files of one name and version. */
export function groupByModel(models) {
  const groups = [];
  for (const model of models) {
    const last = groups.at(-1);
    if (model.form_of && last?.files.includes(model.form_of)) {
      last.files.push(model); // a derived form, under the model it is a form of
    } else if (last && last.name === (model.name ?? null) && last.version === (model.version ?? null)) {
      last.files.push(model);
    } else {
      groups.push({ name: model.name ?? null, version: model.version ?? null, files: [model] });
    }
  }
  return groups;
}

/** Call `onNear` whenever `sentinel` (after the list's last item) comes within a
 *  screen of view. */
export function watchEnd(sentinel, onNear) {
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) onNear();
  }, { rootMargin: "0px 0px 400px 0px" });
  observer.observe(sentinel);
  return observer;
}

/** Run `work(text)` once the user stops typing in `input` for a moment. */
export function onSearch(input, work) {
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => work(input.value), SEARCH_DELAY_MS);
  });
}

/** List items: each model's heading (name, version, how many files), then its files
 *  as `files(list)` renders them. */
export function groupsView(groups, files) {
  return groups.flatMap((group) => [
    h(
      "li",
      { class: "model-group", dataset: { name: group.name ?? "" } },
      h("span", { class: "group-name" }, group.name ?? "Files without a name"),
      group.version ? h("span", { class: "version" }, group.version) : null,
      h("span", { class: "group-files" }, `${group.files.length} ${group.files.length === 1 ? "file" : "files"}`),
    ),
    ...files(group.files),
  ]);
}
