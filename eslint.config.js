// One lint setup for every layer. The layer rules are the point: core/ is plain Node and must
// never reach for Electron or React, and the renderer only talks to the typed API.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const uiPackages = ["electron", "react", "react-dom", "zustand", "electron-store"];

/** core/ is plain Node: no Electron, React or renderer code, in any layer. */
const coreUiRule = {
  paths: uiPackages.map((name) => ({
    name,
    message: "core/ is plain Node: it must not import Electron or React (README, Layout).",
  })),
  patterns: [
    {
      group: ["**/electron/**", "**/renderer/**", "electron/*", "react/*", "react-dom/*"],
      message: "core/ must not depend on the Electron shell or the renderer.",
    },
  ],
};

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "out/**", "release/**", "coverage/**"] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    languageOptions: { globals: { process: "readonly", console: "readonly", Buffer: "readonly" } },
    rules: {
      curly: "error",
      eqeqeq: "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    // Sandboxed preloads run as CommonJS scripts: `import x = require()` is how they load Electron.
    files: ["electron/**/*.cts"],
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    // bin/ is CommonJS (bin/package.json): the installed command starts sooner than as an ES module.
    files: ["bin/**/*.js"],
    languageOptions: {
      sourceType: "commonjs",
      globals: { require: "readonly", module: "writable", __dirname: "readonly" },
    },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    files: ["core/**/*.ts"],
    rules: { "no-restricted-imports": ["error", coreUiRule] },
  },
  {
    // A function a reader takes in at once. Longer ones were where defects hid (a 379-line export,
    // a 176-line channel runner): split by step, not by line count. A table of commands or API
    // handlers is the exception, marked where it stands.
    files: ["core/**/*.ts", "electron/**/*.{ts,cts}", "bin/**/*.js", "scripts/**/*.mjs"],
    rules: { "max-lines-per-function": ["error", { max: 80, skipBlankLines: true, skipComments: true }] },
  },
  {
    // A React component is its markup plus its handlers; the cap stops the next one-file screen.
    files: ["renderer/**/*.{ts,tsx}"],
    rules: { "max-lines-per-function": ["error", { max: 300, skipBlankLines: true, skipComments: true }] },
  },
  {
    // The desktop app's logic is unit-tested in plain Node, where Electron cannot load (and
    // electron-store loads it): only electron/main.ts and the preload import them.
    files: ["electron/lib/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          paths: ["electron", "electron-store"].map((name) => ({
            name,
            message:
              "electron/lib/ runs without Electron (README, Layout): take what Electron does as a port from electron/main.ts.",
          })),
        },
      ],
    },
  },
  ...layerZones(),
  {
    // The renderer talks to the core only through the API. From core/ it may import the API's
    // contract with `import type` (its zod schemas must not reach the page: the build is checked
    // for zod too), the domain's plain types, and the one pure formatter the UI shares.
    files: ["renderer/**/*.{ts,tsx}"],
    rules: {
      "no-restricted-imports": "off",
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          paths: [
            {
              name: "electron",
              message: "The renderer talks to the main process only through the preload API.",
            },
          ],
          patterns: [
            {
              group: ["**/electron/**", "node:*"],
              message: "The renderer runs sandboxed: no Node or main-process code.",
            },
            {
              regex:
                "(^|/)core/(?!domain/types\\.js$|domain/bytes\\.js$|domain/files\\.js$|api/contract\\.js$)",
              message:
                "The renderer uses the core's API contract (type-only), its domain types, formatBytes and modeString; everything else goes through the API.",
            },
            {
              regex: "(^|/)core/api/contract\\.js$",
              allowTypeImports: true,
              message: "Import the API contract with `import type`: its zod schemas must not reach the page.",
            },
          ],
        },
      ],
    },
  },
);

/**
 * The layers of core/, lowest first (README, Layout): a file may import its own layer and the ones
 * below it, never one above. Relative imports name the folders they cross, so a pattern on the
 * folder name catches every way up ("../app/…", "../../api/…"). The domain is pure besides: no
 * Node built-ins and no reading of the wall clock (`now` is passed in); only infra/ and the front
 * doors (api/, server/, cli/) touch processes, files and SSH.
 */
function layerZones() {
  const layers = ["domain", "drivers", "infra", "hypervisor", "app", "api", "server", "cli"];
  const uiRule = coreUiRule;
  const sideEffects = {
    group: ["node:child_process", "node:fs", "node:fs/promises", "child_process", "fs", "ssh2"],
    message: "Processes, files and SSH belong in core/infra/ (or a front door: api/, server/, cli/).",
  };
  return layers.map((layer, index) => {
    const above = layers.slice(index + 1);
    const patterns = [...uiRule.patterns];
    if (above.length > 0) {
      patterns.push({
        regex: `(^|/)(${above.join("|")})/`,
        message: `core/${layer}/ may import only ${["errors.ts", ...layers.slice(0, index + 1)].join(", ")}: ${above.join(", ")} ${above.length === 1 ? "is" : "are"} above it (README, Layout).`,
      });
    }
    if (["domain", "drivers", "hypervisor", "app"].includes(layer)) {
      patterns.push(sideEffects);
    }
    if (layer === "domain") {
      patterns.push({ regex: "^node:", message: "core/domain/ is pure: no Node built-ins." });
    }
    return {
      files: [`core/${layer}/**/*.ts`],
      rules: {
        "no-restricted-imports": ["error", { paths: uiRule.paths, patterns }],
        ...(layer === "domain"
          ? {
              "no-restricted-syntax": [
                "error",
                {
                  selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']",
                  message: "core/domain/ never reads the clock: take `now` as a parameter.",
                },
                {
                  selector: "NewExpression[callee.name='Date'][arguments.length=0]",
                  message: "core/domain/ never reads the clock: take `now` as a parameter.",
                },
              ],
            }
          : {}),
      },
    };
  });
}
