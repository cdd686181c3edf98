/**
 * Small lifetime helpers for ssh2 clients and the promises around them, kept apart from the runner
 * so that its file reads as connection policy rather than plumbing.
 */
import ssh2 from "ssh2";
import type { Client } from "ssh2";

/** Rejects as soon as `signal` aborts, without cancelling the shared work behind `promise`. */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

const closedClients = new WeakSet<Client>();

/**
 * A client that remembers that its socket closed: ssh2 has no public "closed" state, and waiting
 * for a 'close' event that already happened would hang.
 */
export function newClient(): Client {
  const client = new ssh2.Client();
  client.once("close", () => closedClients.add(client));
  return client;
}

/** Waits for `promise` but no longer than `ms`, leaving no timer behind. */
export async function waitAtMost(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/**
 * Ends a client politely (SSH disconnect message) and waits until its socket is really closed, so
 * no handle outlives dispose(). A peer that never answers gets the socket destroyed after 1 s.
 */
export async function closeClient(client: Client): Promise<void> {
  if (closedClients.has(client)) {
    return;
  }
  await new Promise<void>((resolve) => {
    const forceTimer = setTimeout(() => client.destroy(), 1000);
    const giveUpTimer = setTimeout(finish, 3000);
    function finish(): void {
      clearTimeout(forceTimer);
      clearTimeout(giveUpTimer);
      resolve();
    }
    client.once("close", finish);
    client.end();
  });
}
