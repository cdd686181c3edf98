/**
 * The renderer is served from `snapkeep://app/`, not file://: a privileged custom scheme gives the
 * page a real origin to check IPC senders against, and real response headers to carry the same
 * Content-Security-Policy that `snapkeep serve` sends.
 */
import { extname, join, normalize, sep } from "node:path";

import { CONTENT_TYPES } from "../../core/server/serve.js";
import { APP_SCHEME } from "./ipc.js";

/** The file under `root` a request names, or null for another host or a path that leaves root. */
export function rendererFile(root: string, requestUrl: string): string | null {
  let url: URL;
  try {
    url = new URL(requestUrl);
  } catch {
    return null;
  }
  if (url.protocol !== `${APP_SCHEME}:` || url.host !== "app") {
    return null;
  }
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    return null;
  }
  if (path.includes("\0")) {
    return null;
  }
  const base = normalize(root.endsWith(sep) ? root : `${root}${sep}`);
  const file = normalize(join(base, path === "/" ? "index.html" : path));
  return file.startsWith(base) ? file : null;
}

export function contentType(file: string): string {
  return CONTENT_TYPES[extname(file)] ?? "application/octet-stream";
}
