// Builds the renderer (React + zustand) into dist/renderer, served by `snapkeep serve` and loaded
// by the Electron window. JSX is compiled by esbuild; no plugin needed.
import { defineConfig } from "vite";

export default defineConfig({
  root: "renderer",
  base: "./",
  esbuild: { jsx: "automatic" },
  build: {
    outDir: "../dist/renderer",
    emptyOutDir: true,
    // No inline scripts or styles: the CSP allows only files from 'self'.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
});
