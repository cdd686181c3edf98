// The CLI as one file: `npm run build` bundles the compiled CLI into dist/cli/snapkeep.cjs and
// writes V8's code cache for it beside it (scripts/build-cli.mjs). Node 20 has no compile cache of
// its own, and parsing and compiling the CLI's modules (zod above all) was most of a one-shot
// command's start-up; the cache holds their bytecode. The bundle is loaded the way Node loads a
// CommonJS module, through vm.Script, which is what takes a code cache. A cache V8 does not accept
// (another Node version, other V8 flags) is ignored and the bundle compiles as usual.
//
// CommonJS (bin/package.json), like the bundle: a CommonJS entry starts a few milliseconds sooner
// than an ES module, which needs Node's module loader set up first.
"use strict";
const { readFileSync, statSync } = require("node:fs");
const { createRequire } = require("node:module");
const { dirname, join } = require("node:path");
const { Script } = require("node:vm");

const bundlePath = join(__dirname, "../dist/cli/snapkeep.cjs");
/** Written by every `tsc -b` that changed the compiled core: newer than the bundle means stale. */
const coreBuildInfo = join(__dirname, "../dist/.tsbuildinfo.core");
/** The bundle's last line names its build, and the code cache made for that build carries the name. */
const BUILD_MARK = "//# snapkeep-build=";

function buildIdOf(source) {
  const at = source.lastIndexOf(BUILD_MARK);
  return at === -1 ? null : source.slice(at + BUILD_MARK.length).trim();
}

function codeCachePath(buildId) {
  return `${bundlePath}.${buildId}.cache`;
}

/** Compiles the bundle as Node compiles a CommonJS module: the same wrapper, so one cache serves both. */
function compileBundle(source, cachedData) {
  const wrapped = `(function (exports, require, module, __filename, __dirname) { ${source}\n});`;
  return new Script(wrapped, { filename: bundlePath, ...(cachedData === undefined ? {} : { cachedData }) });
}

/** Runs the compiled bundle's top level and returns its exports (runCli). */
function runBundle(script) {
  const module = { exports: {} };
  script
    .runInThisContext()
    .call(module.exports, module.exports, createRequire(bundlePath), module, bundlePath, dirname(bundlePath));
  return module.exports;
}

/**
 * The bundled CLI, or null when there is no current bundle: none was built, or `tsc` compiled the
 * core again after it was (then the caller loads the compiled modules, which are current).
 */
function loadBundledCli() {
  let source;
  try {
    const built = statSync(bundlePath).mtimeMs;
    const compiled = statSync(coreBuildInfo, { throwIfNoEntry: false })?.mtimeMs ?? 0;
    if (compiled > built) {
      return null;
    }
    // ASCII only (scripts/build-cli.mjs makes sure), which latin1 reads fastest.
    source = readFileSync(bundlePath, "latin1");
  } catch {
    return null;
  }
  const buildId = buildIdOf(source);
  let cachedData;
  try {
    cachedData = buildId === null ? undefined : readFileSync(codeCachePath(buildId));
  } catch {
    cachedData = undefined; // no cache: the bundle compiles as usual
  }
  return runBundle(compileBundle(source, cachedData));
}

module.exports = { bundlePath, buildIdOf, codeCachePath, compileBundle, runBundle, loadBundledCli };
