// One lint setup for every layer. The layer rules are the point: core/ is plain Node and must
// never reach for Electron or React, and the renderer only talks to the typed API.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const uiPackages = ["electron", "react", "react-dom", "zustand", "electron-store"];

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
    files: ["core/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          paths: uiPackages.map((name) => ({
            name,
            message:
              "core/ is plain Node: it must not import Electron or React (see DESIGN.md, Architecture).",
          })),
          patterns: [
            {
              group: ["**/electron/**", "**/renderer/**", "electron/*", "react/*", "react-dom/*"],
              message: "core/ must not depend on the Electron shell or the renderer.",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["renderer/**/*.{ts,tsx}"],
    rules: {
      "no-restricted-imports": [
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
              regex: "(^|/)core/(?!domain/types\\.js$)",
              message:
                "The renderer uses the core's plain domain types only; everything else goes through the API.",
            },
          ],
        },
      ],
    },
  },
);
