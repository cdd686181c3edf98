// Builds the renderer (React + zustand) into dist/renderer, served by `snapkeep serve` and loaded
// by the Electron window. JSX is compiled by esbuild; no plugin needed.
import { readFileSync } from "node:fs";
import { URL } from "node:url";
import { defineConfig } from "vite";

const { version } = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8"));

export default defineConfig({
  root: "renderer",
  base: "./",
  esbuild: { jsx: "automatic" },
  // Settings' About shows it.
  define: { __SNAPKEEP_VERSION__: JSON.stringify(version) },
  build: {
    outDir: "../dist/renderer",
    emptyOutDir: true,
    // No inline scripts or styles: the CSP allows only files from 'self'.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
});
