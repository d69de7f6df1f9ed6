// The extension's background: Chromium runs it as a module service worker, Firefox
// as a module background script (manifest.json lists it both ways).
import { startServiceWorker } from "./router.js";

startServiceWorker(globalThis.chrome);
