/** Snapkeep's version, from package.json at build time (renderer.vite.config.mjs). */
declare const __SNAPKEEP_VERSION__: string;
