/**
 * The renderer is served from `snapkeep://app/`, not file://: a privileged custom scheme gives the
 * page a real origin to check IPC senders against, and real response headers to carry the same
 * Content-Security-Policy that `snapkeep serve` sends.
 */
import { extname, join, normalize, sep } from "node:path";
import { PassThrough, Readable, type Writable } from "node:stream";

import { CONTENT_TYPES, contentDisposition } from "../../core/server/serve.js";
import { APP_SCHEME } from "./ipc.js";

/** The URL of a request to the app's own host, or null for anything else. */
function appUrl(requestUrl: string): URL | null {
  let url: URL;
  try {
    url = new URL(requestUrl);
  } catch {
    return null;
  }
  return url.protocol === `${APP_SCHEME}:` && url.host === "app" ? url : null;
}

/** The file under `root` a request names, or null for another host or a path that leaves root. */
export function rendererFile(root: string, requestUrl: string): string | null {
  const url = appUrl(requestUrl);
  if (url === null) {
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

/** The ticket of `snapkeep://app/download/TICKET` (a files.download answer), else null. */
export function downloadTicket(requestUrl: string): string | null {
  const url = appUrl(requestUrl);
  return url === null ? null : (/^\/download\/([0-9a-f]{32})$/.exec(url.pathname)?.[1] ?? null);
}

/** What Api.takeDownload gives: a name, a size when known, and how to send the bytes. */
export interface DownloadItem {
  readonly name: string;
  readonly size: number | null;
  send(to: Writable): Promise<number>;
}

/**
 * The window's download of a ticket, as `snapkeep serve` answers it: an attachment whose body is
 * the bytes as they come (a copy that breaks off errors the stream, so the download fails rather
 * than keeping a short file), or 404 with a sentence for a ticket used or too old.
 */
export function downloadResponse(item: DownloadItem | null, headers: Record<string, string>): Response {
  if (item === null) {
    return new Response(
      "This download link was used already or is too old: download it again from the file browser.\n",
      { status: 404, headers: { ...headers, "Content-Type": "text/plain; charset=utf-8" } },
    );
  }
  const body = new PassThrough();
  item.send(body).then(
    () => body.end(),
    (error: unknown) => body.destroy(error instanceof Error ? error : new Error(String(error))),
  );
  return new Response(Readable.toWeb(body) as ReadableStream<Uint8Array>, {
    headers: {
      ...headers,
      "Cache-Control": "no-store",
      "Content-Type": "application/octet-stream",
      "Content-Disposition": contentDisposition(item.name),
      ...(item.size === null ? {} : { "Content-Length": String(item.size) }),
    },
  });
}
