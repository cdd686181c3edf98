/**
 * The settings store when the file system fails one call: each failure a full, over-quota or
 * read-only disk gives, at each step of a write. The failures are injected into node:fs here; the
 * same paths on a real full tmpfs are in test/integration/settings-durability.test.ts.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { openSettingsStore } from "../../core/infra/store/store.js";

interface Fault {
  readonly call: "openSync" | "writeSync" | "fsyncSync";
  /** Which file fails, by its name (temporary files are named after their target). */
  readonly file: RegExp;
  readonly code: string;
  /** Before failing, one write takes half of what it was given, as write(2) does on a nearly full disk. */
  readonly shortWriteFirst?: boolean;
}

const injected = vi.hoisted(() => ({ fault: undefined as Fault | undefined, shortWritten: false }));

vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  const names = new Map<number, string>();
  const failing = (call: Fault["call"], file: string | undefined): Fault | undefined => {
    const { fault } = injected;
    return fault !== undefined && fault.call === call && file !== undefined && fault.file.test(basename(file))
      ? fault
      : undefined;
  };
  const errno = (fault: Fault): Error =>
    Object.assign(new Error(`${fault.code}: injected, ${fault.call}`), { code: fault.code });
  return {
    ...fs,
    openSync: (...args: Parameters<typeof fs.openSync>) => {
      const fault = failing("openSync", String(args[0]));
      if (fault !== undefined) {
        throw errno(fault);
      }
      const fd = fs.openSync(...args);
      names.set(fd, String(args[0]));
      return fd;
    },
    writeSync: (fd: number, buffer: Uint8Array, offset: number, length: number) => {
      const fault = failing("writeSync", names.get(fd));
      if (fault?.shortWriteFirst === true && !injected.shortWritten) {
        injected.shortWritten = true;
        return fs.writeSync(fd, buffer, offset, Math.ceil(length / 2));
      }
      if (fault !== undefined) {
        throw errno(fault);
      }
      return fs.writeSync(fd, buffer, offset, length);
    },
    fsyncSync: (fd: number) => {
      const fault = failing("fsyncSync", names.get(fd));
      if (fault !== undefined) {
        throw errno(fault);
      }
      fs.fsyncSync(fd);
    },
  };
});

const homes: string[] = [];
afterEach(() => {
  injected.fault = undefined;
  injected.shortWritten = false;
  for (const home of homes.splice(0)) {
    rmSync(home, { recursive: true, force: true });
  }
});
const now = new Date("2026-11-26T10:00:00Z");

describe("a settings write that cannot complete", () => {
  const mainTemp = /^settings\.json\.tmp-/;
  const copyTemp = /^settings\.json\.last-good\.tmp-/;
  const lock = /^settings\.json\.lock$/;

  it.each<[string, Fault, string, RegExp]>([
    [
      "a short write, then ENOSPC (what replaced the good file in issue 13)",
      { call: "writeSync", file: mainTemp, code: "ENOSPC", shortWriteFirst: true },
      "NO_SPACE",
      /^The disk that holds .* is full, so the settings could not be saved; they are as they were before\.$/,
    ],
    [
      "ENOSPC writing the last good copy, once the new main file is staged",
      { call: "writeSync", file: copyTemp, code: "ENOSPC" },
      "NO_SPACE",
      /is full, so the settings could not be saved/,
    ],
    [
      "EDQUOT when flushing",
      { call: "fsyncSync", file: mainTemp, code: "EDQUOT" },
      "NO_SPACE",
      /^The disk quota for .* is used up, so the settings could not be saved/,
    ],
    [
      "EROFS creating the temporary file",
      { call: "openSync", file: mainTemp, code: "EROFS" },
      "STORE_CORRUPT",
      /^.* is on a read-only file system, so the settings could not be saved/,
    ],
    [
      "ENOSPC writing the lock's owner",
      { call: "writeSync", file: lock, code: "ENOSPC" },
      "NO_SPACE",
      /is full, so the settings could not be saved/,
    ],
    [
      "EROFS creating the lock",
      { call: "openSync", file: lock, code: "EROFS" },
      "STORE_CORRUPT",
      /is on a read-only file system/,
    ],
  ])("%s: one sentence, both files as they were, nothing left behind", (_why, fault, code, sentence) => {
    const home = mkdtempSync(join(tmpdir(), "snapkeep-faults-"));
    homes.push(home);
    const path = join(home, "settings.json");
    const store = openSettingsStore(home, now);
    store.update((s) => ({ ...s, hosts: [{ name: "local", kind: "local", uri: "qemu:///system" }] }));
    const before = readFileSync(path, "utf8");
    const copyBefore = readFileSync(`${path}.last-good`, "utf8");

    injected.fault = fault;
    let thrown: unknown;
    try {
      store.update((s) => ({
        ...s,
        safetyKeep: 9,
        annotations: { k: { note: "x".repeat(1500), pinned: true } },
      }));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code, message: expect.stringMatching(sentence) });
    expect((thrown as Error).message).not.toContain("\n");
    expect(readFileSync(path, "utf8")).toBe(before);
    expect(readFileSync(`${path}.last-good`, "utf8")).toBe(copyBefore);
    expect(readdirSync(home).sort()).toEqual(["settings.json", "settings.json.last-good"]);

    injected.fault = undefined;
    const started = Date.now();
    expect(store.update((s) => ({ ...s, safetyKeep: 9 })).safetyKeep).toBe(9);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(openSettingsStore(home, now).read().safetyKeep).toBe(9);
  });

  it("refuses to start on a full disk rather than start without the settings file it could not create", () => {
    const home = mkdtempSync(join(tmpdir(), "snapkeep-faults-"));
    homes.push(home);
    injected.fault = { call: "writeSync", file: mainTemp, code: "ENOSPC" };
    expect(() => openSettingsStore(home, now)).toThrow(expect.objectContaining({ code: "NO_SPACE" }));
    expect(readdirSync(home)).toEqual([]);
    injected.fault = undefined;
    expect(openSettingsStore(home, now).createdNow).toBe(true);
  });

  it("keeps the unreadable file and the last good copy when putting the copy back fails", () => {
    const home = mkdtempSync(join(tmpdir(), "snapkeep-faults-"));
    homes.push(home);
    const path = join(home, "settings.json");
    openSettingsStore(home, now).update((s) => ({ ...s, safetyKeep: 4 }));
    const copy = readFileSync(`${path}.last-good`, "utf8");
    const broken = '{"version": 1, "hosts": [';
    writeFileSync(path, broken);

    injected.fault = { call: "writeSync", file: mainTemp, code: "ENOSPC" };
    expect(() => openSettingsStore(home, now)).toThrow(expect.objectContaining({ code: "NO_SPACE" }));
    expect(readFileSync(path, "utf8")).toBe(broken);
    expect(readFileSync(`${path}.last-good`, "utf8")).toBe(copy);
    expect(readdirSync(home).sort()).toEqual(["settings.json", "settings.json.last-good"]);

    injected.fault = undefined;
    const store = openSettingsStore(home, now);
    expect(store.recovered?.message).toMatch(/the last good settings were restored/);
    expect(store.read().safetyKeep).toBe(4);
  });
});
