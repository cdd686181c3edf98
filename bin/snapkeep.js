#!/usr/bin/env node
// The installed entry point: the CLI is compiled to dist/ by `npm run build` (run on npm install)
// and bundled into one file with a code cache (see bundle.js); without a current bundle, the
// compiled modules run as they are.
"use strict";
const { loadBundledCli } = require("./bundle.js");

const bundled = loadBundledCli();
(bundled === null ? import("../dist/core/cli/main.js") : Promise.resolve(bundled))
  .then((cli) => cli.runCli(process.argv.slice(2)))
  .then((code) => {
    process.exitCode = code;
  });
