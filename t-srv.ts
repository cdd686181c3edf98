import { fileURLToPath } from "node:url";
import { Api } from "./core/api/api.js";
import { serve } from "./core/server/serve.js";
import { syntheticContext } from "./bench/synthetic.js";
const api = new Api(syntheticContext({ hosts: 4, vms: 200, snapshots: 5000, big: 1000 }));
const orig = api.handle.bind(api);
(api as any).handle = async (raw: any) => { const t = performance.now(); const r = await orig(raw); console.log("handle", raw?.method, (performance.now() - t).toFixed(1), "ms"); return r; };
const s = await serve(api, { port: 47125, rendererDir: fileURLToPath(new URL("./dist/renderer/", import.meta.url)) });
console.log(s.url);
