// Small pieces every popup view uses: buttons, the confirm box, counted words.

import { h } from "./dom.js";

export function confirmBox({ text, yes, yesAction, busy, onYes, onNo, warn = false, step }) {
  return h(
    "div",
    { class: `confirm${warn ? " warn" : ""}`, role: "alertdialog", dataset: step ? { step } : {} },
    h("p", {}, text),
    h(
      "div",
      { class: "actions" },
      button("Cancel", "cancel", onNo, { busy, tone: "ghost" }),
      button(yes, yesAction, onYes, { busy, tone: "danger" }),
    ),
  );
}

export function button(label, action, onclick, { busy = false, tone = "", disabled = false, title } = {}) {
  const attributes = { type: "button", class: tone, dataset: { action }, disabled: busy || disabled, title, onclick };
  return h("button", attributes, label);
}

export function plural(n, word) {
  return n === 1 ? word : `${word}s`;
}

export function count(n, word) {
  return `${n} ${plural(n, word)}`;
}
