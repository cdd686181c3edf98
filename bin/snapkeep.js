#!/usr/bin/env node
// The installed entry point: the CLI is compiled to dist/ by `npm run build` (run on npm install).
import { runCli } from "../dist/core/cli/main.js";

process.exitCode = await runCli(process.argv.slice(2));
