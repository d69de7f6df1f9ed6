// Text for the popup: sizes, hashes, sites, times. Pure functions, no DOM.

const UNITS = ["KiB", "MiB", "GiB", "TiB"];

/** 3163737 → "3.02 MiB"; binary units, three significant digits. */
export function formatBytes(bytes) {
  if (!Number.isFinite(bytes) || bytes < 0) return "—";
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = value < 10 ? 2 : value < 100 ? 1 : 0;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** "X on disk, Y shared with other files" for a model kept as segments that shares
 *  parts with other stored files ("X on disk, nothing shared" when it shares none);
 *  null where the host gave no figures (a file kept whole, a pre-installed one). */
export function diskLine(model) {
  const disk = model?.disk;
  if (!disk || typeof disk.own_bytes !== "number" || typeof disk.shared_bytes !== "number") return null;
  const own = `${formatBytes(disk.own_bytes)} on disk`;
  if (disk.shared_bytes <= 0) return `${own}, nothing shared`;
  return `${own}, ${formatBytes(disk.shared_bytes)} shared with other files`;
}

export function shortHash(sha256) {
  return String(sha256 ?? "").slice(0, 12);
}

/** What to call a model: its name, else its short hash. */
export function modelTitle(model) {
  return model.name || `sha256:${shortHash(model.sha256)}`;
}

/** "https://a.example" → "a.example"; "http://127.0.0.1:8000" → "127.0.0.1:8000".
 *  https is the norm and left out; any other scheme stays visible. */
export function siteLabel(origin) {
  try {
    const url = new URL(origin);
    return url.protocol === "https:" ? url.host : `${url.protocol}//${url.host}`;
  } catch {
    return String(origin);
  }
}

export function percent(part, whole) {
  if (!whole || whole <= 0) return 0;
  return Math.max(0, Math.min(100, Math.round((part / whole) * 100)));
}

/** Seconds since the epoch → "just now", "5 min ago", "3 h ago", "2 days ago". */
export function timeAgo(epochSeconds, now = Date.now() / 1000) {
  if (!Number.isFinite(epochSeconds)) return "";
  const seconds = Math.max(0, now - epochSeconds);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  const days = Math.floor(seconds / 86400);
  return days === 1 ? "yesterday" : `${days} days ago`;
}

/** The last path segment of a URL ("…/magika/model.onnx" → "model.onnx"). */
export function fileName(url) {
  try {
    const path = new URL(url).pathname;
    return decodeURIComponent(path.slice(path.lastIndexOf("/") + 1)) || url;
  } catch {
    return String(url ?? "");
  }
}
