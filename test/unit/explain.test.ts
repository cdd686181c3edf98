/**
 * Failures as the sentences people read: values the API's schemas refuse, a settings change the
 * store's schema refuses, and system calls that fail for a reason with a name.
 */
import { readFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { describe, expect, it } from "vitest";

import { Api, type ApiContext } from "../../core/api/api.js";
import { quoteInput } from "../../core/errors.js";
import { systemCause, toErrorView } from "../../core/domain/explain.js";
import { emptySettings, settingsSchema } from "../../core/domain/settings.js";

/** The things no sentence for a person contains: a dumped object or list, zod's own wording. */
function expectSentence(message: string): void {
  expect(message).toMatch(/^[A-Z"].*[.]$/s);
  expect(message).not.toMatch(/[{[\n]|ZodError|Invalid input|expected .* received|Too (big|small)/);
}

describe("API parameters a schema refuses", () => {
  // Nothing is reached: every call below is refused before a handler runs.
  const api = new Api({} as ApiContext);
  const UUID = "6f1c0c1e-0000-4000-8000-000000000001";
  const refusal = async (
    method: string,
    params: unknown,
  ): Promise<{ message: string; hint: string | null }> => {
    const answer = await api.handle({ id: 1, method, params });
    if (!("error" in answer)) {
      throw new Error(`${method} was accepted`);
    }
    expect(answer.error.code).toBe("INVALID_INPUT");
    expectSentence(answer.error.message);
    return answer.error;
  };

  it("names the field in words, quotes what was given and says what is allowed", async () => {
    expect(await refusal("targets.add", { name: "bad name!", dir: "/tmp/x" })).toMatchObject({
      message:
        "The target name \"bad name!\" may contain only letters, digits, '.', '_' and '-', starting with a letter or digit (at most 63 characters).",
      hint: "In targets.add (name).",
    });
    expect((await refusal("targets.add", { name: "t", dir: "/tmp/a\nb" })).message).toBe(
      'The folder "/tmp/a\\nb" cannot contain control characters such as newlines or tabs.',
    );
    expect((await refusal("targets.add", { name: "t", dir: "/tmp/x", keep: 1.5 })).message).toBe(
      "The number of exports to keep must be a whole number, not 1.5.",
    );
    expect((await refusal("hosts.trust", { name: "web01" })).message).toBe(
      "The host key fingerprint is missing.",
    );
    expect((await refusal("hosts.add", { name: "h", local: "yes" })).message).toBe(
      'The choice of this computer must be true or false, not "yes".',
    );
    expect(
      (await refusal("schedules.add", { host: "local", vm: "v", when: { every: "hourly" }, retention: {} }))
        .message,
    ).toBe('The repeat period "hourly" must be daily, weekly, monthly or cron.');
    expect(
      (
        await refusal("schedules.add", {
          host: "local",
          vm: "v",
          when: { every: "weekly", at: "02:00", weekday: "funday" },
          retention: { keepLast: 3 },
        })
      ).message,
    ).toBe('The weekday "funday" must be sunday, monday, tuesday, wednesday, thursday, friday or saturday.');
    expect(
      (await refusal("snapshots.create", { host: "local", vmUuid: UUID, name: "a".repeat(300) })).message,
    ).toBe(`The snapshot name "${"a".repeat(40)}…" (300 characters) may be at most 128 characters long.`);
    expect((await refusal("snapshots.create", { host: "local", vmUuid: UUID, disks: [] })).message).toBe(
      "The list of disks needs at least one entry.",
    );
    expect(
      (await refusal("snapshots.delete", { host: "local", vmUuid: "web01", snapshot: "first" })).message,
    ).toBe('The VM UUID "web01" is not a UUID (8-4-4-4-12 hexadecimal digits, as virsh domuuid prints it).');
    expect((await refusal("schedules.pauseAll", { minutes: 0 })).message).toBe(
      "The pause in minutes must be at least 1, not 0.",
    );
    expect((await refusal("library.list", { kind: "thing", host: "h" })).message).toBe(
      'The kind "thing" must be template or volume.',
    );
    expect((await refusal("jobs.cancel", { id: "../../etc" })).message).toBe(
      'The job ID "../../etc" is not in the form Snapkeep expects.',
    );
  });

  it("keeps the sentences written on a schema, and words a call that is not an object", async () => {
    expect((await refusal("settings.set", { safetyKeep: 0 })).message).toBe(
      "Keep at least 1 safety snapshot per VM.",
    );
    expect((await refusal("targets.add", { name: "t" })).message).toBe("Give a folder or an SSH address.");
    expect((await refusal("hosts.list", "x")).message).toBe("The request must be a set of named fields.");
  });

  it("says the same about a schedule's time and retention as the settings file and the CLI do", async () => {
    const draft = {
      host: "local",
      vm: "v",
      when: { every: "daily", at: "25:00" },
      retention: { keepLast: 3 },
    };
    const late = await refusal("schedules.add", draft);
    expect(late).toEqual({
      code: "INVALID_INPUT",
      message: '"25:00" is not a time of day; write it as HH:MM, 00:00 to 23:59.',
      hint: "In schedules.add (when).",
      action: null,
    });
    // The settings file refuses the same value with the same sentence (validateWhen's, which the
    // CLI's `schedule add --at 25:00` prints too).
    const stored = settingsSchema.safeParse({
      ...emptySettings(),
      schedules: [
        {
          id: "0a1b2c3d",
          host: "local",
          vmUuid: UUID,
          vmName: "v",
          when: draft.when,
          retention: { keepLast: 3 },
          enabled: true,
          createdAt: "2026-11-26T10:00:00.000Z",
        },
      ],
    });
    expect(stored.error?.issues.map((i) => i.message)).toEqual([late.message]);
    expect(
      (await refusal("schedules.add", { ...draft, when: { every: "monthly", at: "02:00", day: 32 } }))
        .message,
    ).toBe("Day 32 is not a day of the month; use 1 to 31 (29-31 run on the last day of shorter months).");
    expect(
      (await refusal("schedules.add", { ...draft, when: { every: "cron", cron: "0 3 * *" } })).message,
    ).toBe('A cron expression has five fields (minute hour day-of-month month weekday); "0 3 * *" has 4.');
    // A person setting up a schedule says how many to keep, in words that name no CLI flag.
    expect(
      (await refusal("schedules.add", { ...draft, when: { every: "daily", at: "02:00" }, retention: {} }))
        .message,
    ).toBe("Say how many snapshots to keep: the latest N, or how many daily, weekly or monthly ones.");
  });
});

describe("failures from outside Snapkeep", () => {
  it("words a settings change the store's schema refuses, without dumping the issues", () => {
    const settings = { ...emptySettings(), targets: [{ name: "bad name!", kind: "dir", path: "/tmp/x" }] };
    let thrown: unknown;
    try {
      settingsSchema.parse(settings);
    } catch (error) {
      thrown = error;
    }
    const view = toErrorView(thrown);
    expect(view).toEqual({
      code: "INVALID_INPUT",
      message:
        "The field targets.0.name may contain only letters, digits, '.', '_' and '-', starting with a letter or digit (at most 63 characters).",
      hint: null,
      action: null,
    });
  });

  it("names the cause of a failed file operation, with the path and what to check", () => {
    let missing: unknown;
    try {
      readFileSync("/nonexistent-snapkeep/settings.json");
    } catch (error) {
      missing = error;
    }
    expect(toErrorView(missing)).toEqual({
      code: "NOT_FOUND",
      message: "Cannot open /nonexistent-snapkeep/settings.json: it, or a folder above it, does not exist.",
      hint: null,
      action: null,
    });
    expect(systemCause(missing)).toBe("it, or a folder above it, does not exist");
    const denied = Object.assign(new Error("EACCES: permission denied, mkdir '/srv/x'"), {
      code: "EACCES",
      syscall: "mkdir",
      path: "/srv/x",
    });
    expect(toErrorView(denied)).toEqual({
      code: "PERMISSION_DENIED",
      message: "Cannot create the folder /srv/x: permission denied.",
      hint: "Check the owner and permissions of it and of the folders above it.",
      action: null,
    });
    const full = Object.assign(new Error("ENOSPC"), { code: "ENOSPC", syscall: "write", path: "/a\nb" });
    expect(toErrorView(full).message).toBe('Cannot write to "/a\\nb": the disk is full.');
  });

  it("names a refused connection and a name that does not resolve", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as { port: number };
    await new Promise((resolve) => closed.close(resolve));
    const refused = await new Promise<unknown>((resolve) =>
      connect(port, "127.0.0.1").once("error", resolve),
    );
    expect(toErrorView(refused)).toEqual({
      code: "HOST_UNREACHABLE",
      message: `Cannot connect to 127.0.0.1:${port}: the connection was refused (nothing listens on that port).`,
      hint: "Check that the other side is up and reachable from here.",
      action: null,
    });
    const unresolved = Object.assign(new Error("getaddrinfo ENOTFOUND nowhere.invalid"), {
      code: "ENOTFOUND",
      syscall: "getaddrinfo",
      hostname: "nowhere.invalid",
    });
    expect(toErrorView(unresolved)).toEqual({
      code: "HOST_UNREACHABLE",
      message: "Cannot look up nowhere.invalid: the host name does not resolve.",
      hint: "Check the name, or give an IP address instead.",
      action: null,
    });
  });

  it("calls only a cause it cannot name unexpected", () => {
    expect(toErrorView(new TypeError("x is not a function"))).toEqual({
      code: "INTERNAL",
      message: "Unexpected error: x is not a function",
      hint: null,
      action: null,
    });
  });
});

describe("quoteInput", () => {
  it("keeps a value on one line and cuts a long one short, saying how long it was", () => {
    expect(quoteInput("web01")).toBe('"web01"');
    expect(quoteInput("a\nb\tc")).toBe('"a\\nb\\tc"');
    expect(quoteInput("x".repeat(61))).toBe(`"${"x".repeat(40)}…" (61 characters)`);
  });
});
