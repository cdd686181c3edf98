/**
 * The layers of core/ are enforced by lint (eslint.config.js, layerZones): planted violations in
 * each layer must fail, and imports that respect the order must pass. electron/lib/ is kept free of
 * Electron the same way.
 */
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

const eslint = new ESLint({ cwd: new URL("../..", import.meta.url).pathname });

async function problems(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? "parse"}: ${m.message}`);
}

describe("the layers of core/", () => {
  it("refuse an import from a layer above", async () => {
    for (const [file, code] of [
      [
        "core/domain/planted.ts",
        'import type { Exports } from "../app/exports/exports.js";\nexport type X = Exports;\n',
      ],
      [
        "core/drivers/sh/planted.ts",
        'import type { LocalRunner } from "../../infra/runner/local.js";\nexport type X = LocalRunner;\n',
      ],
      [
        "core/infra/planted.ts",
        'import type { LibvirtHost } from "../hypervisor/libvirt.js";\nexport type X = LibvirtHost;\n',
      ],
      [
        "core/hypervisor/planted.ts",
        'import type { VmModules } from "../app/vm-modules.js";\nexport type X = VmModules;\n',
      ],
      ["core/app/planted.ts", 'import type { Api } from "../api/api.js";\nexport type X = Api;\n'],
      [
        "core/api/planted.ts",
        'import type { Serving } from "../server/serve.js";\nexport type X = Serving;\n',
      ],
    ] as const) {
      expect(await problems(file, code)).toEqual([
        expect.stringMatching(/^no-restricted-imports: .* above it/),
      ]);
    }
  });

  it("keep Electron and React out of every layer", async () => {
    for (const layer of ["domain", "infra", "app", "cli"]) {
      expect(
        await problems(
          `core/${layer}/planted.ts`,
          'import { app } from "electron";\nexport const a = app;\n',
        ),
      ).toContainEqual(expect.stringMatching(/must not import Electron or React/));
    }
    expect(
      await problems("core/errors-planted.ts", 'import React from "react";\nexport const r = React;\n'),
    ).toContainEqual(expect.stringMatching(/must not import Electron or React/));
  });

  it("keep the domain pure and side effects in infra", async () => {
    expect(
      await problems(
        "core/domain/planted.ts",
        'import { readFileSync } from "node:fs";\nexport const f = readFileSync;\n',
      ),
    ).toContainEqual(expect.stringMatching(/no Node built-ins/));
    expect(
      await problems("core/domain/planted.ts", "export const now = (): number => Date.now();\n"),
    ).toEqual([expect.stringMatching(/never reads the clock/)]);
    expect(await problems("core/domain/planted.ts", "export const now = (): Date => new Date();\n")).toEqual([
      expect.stringMatching(/never reads the clock/),
    ]);
    expect(
      await problems(
        "core/app/planted.ts",
        'import { spawn } from "node:child_process";\nexport const s = spawn;\n',
      ),
    ).toEqual([expect.stringMatching(/belong in core\/infra/)]);
  });

  it("allow imports down the layers", async () => {
    expect(
      await problems(
        "core/app/planted.ts",
        [
          'import type { LibvirtHost } from "../hypervisor/libvirt.js";',
          'import type { LocalRunner } from "../infra/runner/local.js";',
          'import { virsh } from "../drivers/libvirt/args.js";',
          'import type { Snapshot } from "../domain/types.js";',
          'import { SnapkeepError } from "../errors.js";',
          "export type X = [LibvirtHost, LocalRunner, Snapshot, SnapkeepError, typeof virsh];",
          "",
        ].join("\n"),
      ),
    ).toEqual([]);
    expect(
      await problems(
        "core/domain/planted.ts",
        "export const later = (now: Date): Date => new Date(now.getTime() + 1);\n",
      ),
    ).toEqual([]);
  });
});

describe("the desktop shell's logic (electron/lib/)", () => {
  it("never loads Electron or electron-store, which cannot load where it is tested", async () => {
    for (const name of ["electron", "electron-store"]) {
      expect(
        await problems("electron/lib/planted.ts", `import x from "${name}";\nexport const y = x;\n`),
      ).toEqual([expect.stringMatching(/^no-restricted-imports: .*runs without Electron/)]);
    }
    expect(
      await problems(
        "electron/planted-main.ts",
        'import Store from "electron-store";\nexport const S = Store;\n',
      ),
    ).toEqual([]);
  });
});

describe("the renderer's one door into core/", () => {
  const rule = "@typescript-eslint/no-restricted-imports";

  it("takes the API contract as types only, never its runtime (zod) code", async () => {
    expect(
      await problems(
        "renderer/src/planted.ts",
        'import type { Method } from "../../core/api/contract.js";\nexport type M = Method;\n',
      ),
    ).toEqual([]);
    expect(
      await problems(
        "renderer/src/planted.ts",
        'import { methods } from "../../core/api/contract.js";\nexport const m = methods;\n',
      ),
    ).toEqual([
      expect.stringMatching(new RegExp(`^${rule}: .*Import the API contract with \`import type\``)),
    ]);
  });

  it("refuses the rest of the core, with or without `type`", async () => {
    for (const code of [
      'import type { Api } from "../../core/api/api.js";\nexport type X = Api;\n',
      'import { Jobs } from "../../core/api/jobs.js";\nexport const j = Jobs;\n',
      'import type { Schedules } from "../../core/app/schedules/schedules.js";\nexport type X = Schedules;\n',
      'import { whenSchema } from "../../core/domain/schedule/spec.js";\nexport const w = whenSchema;\n',
    ]) {
      expect(await problems("renderer/src/planted.ts", code), code).toEqual([
        expect.stringMatching(new RegExp(`^${rule}: .*The renderer uses the core's API contract`)),
      ]);
    }
  });

  it("shares the domain's plain types and its one formatBytes", async () => {
    expect(
      await problems(
        "renderer/src/planted.ts",
        [
          'import type { Snapshot } from "../../core/domain/types.js";',
          'import { formatBytes } from "../../core/domain/bytes.js";',
          "export const f = (s: Snapshot): string => formatBytes(s.disks.length);",
          "",
        ].join("\n"),
      ),
    ).toEqual([]);
  });
});
