// Part of `npm run build`, after `tsc`: bundles the compiled CLI (dist/core/cli/main.js) into one
// CommonJS file, dist/cli/snapkeep.cjs, and writes V8's code cache for it (bin/bundle.js says why).
// The cache is made by a fresh `node` that loads the bundle as bin/snapkeep.js does and runs one
// command that needs no host, so the bytecode of what every command runs (the settings check, the
// option parser, the error report) is in it.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, URL } from "node:url";
import { build } from "esbuild";
import { buildIdOf, bundlePath, codeCachePath, compileBundle, runBundle } from "../bin/bundle.js";

const repo = fileURLToPath(new URL("..", import.meta.url));

if (process.argv[2] === "--code-cache") {
  await writeCodeCache();
} else {
  await bundle();
  // A child with no inherited Node or V8 options: a cache is only taken by a process with the same flags.
  const env = { ...process.env };
  delete env["NODE_OPTIONS"];
  const made = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "--code-cache"], {
    stdio: "inherit",
    env,
  });
  if (made.status !== 0) {
    process.stderr.write("build-cli: the code cache could not be made (the CLI works, it starts slower)\n");
  }
}

async function bundle() {
  const outDir = dirname(bundlePath);
  const result = await build({
    entryPoints: [join(repo, "dist/core/cli/main.js")],
    bundle: true,
    platform: "node",
    target: "node20.19",
    format: "cjs",
    write: false,
    outfile: bundlePath,
    logLevel: "warning",
    legalComments: "none",
    // Not keepNames: it wraps every function the bundle creates, at run time too, in a call that
    // names it. A name esbuild changes to avoid a clash ("CommanderError2") only shows in stack
    // traces; nothing Snapkeep prints reads it.
    // ssh2 loads native add-ons and is only loaded for SSH hosts; ws's are optional add-ons.
    external: ["ssh2", "cpu-features", "bufferutil", "utf-8-validate"],
    plugins: [importMetaUrl(outDir)],
  });
  // esbuild escapes what is not ASCII in the code but keeps comments as written; one character
  // outside ASCII makes V8 hold the whole source as a two-byte string, read several times slower.
  const code = result.outputFiles[0].text.replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  const buildId = createHash("sha256").update(code).digest("hex").slice(0, 16);
  mkdirSync(outDir, { recursive: true });
  for (const name of readdirSync(outDir)) {
    if (name.endsWith(".cache")) {
      rmSync(join(outDir, name), { force: true });
    }
  }
  // Written aside and renamed: a CLI started meanwhile reads the old bundle or the new one, whole.
  const temporary = `${bundlePath}.${process.pid}.tmp`;
  writeFileSync(temporary, `${code}//# snapkeep-build=${buildId}\n`);
  renameSync(temporary, bundlePath);
}

/**
 * `import.meta.url` has no meaning in CommonJS: each module of the compiled core gets its own file's
 * URL instead (serve.ts finds the built UI relative to it).
 */
function importMetaUrl(outDir) {
  return {
    name: "import-meta-url",
    setup(builder) {
      builder.onLoad({ filter: /[\\/]dist[\\/]core[\\/].*\.js$/ }, (args) => {
        const source = readFileSync(args.path, "utf8");
        if (!source.includes("import.meta.url")) {
          return undefined;
        }
        const from = JSON.stringify(relative(outDir, args.path).split("\\").join("/"));
        return {
          contents: source.replaceAll(
            "import.meta.url",
            `require("node:url").pathToFileURL(require("node:path").join(__dirname, ${from})).href`,
          ),
          loader: "js",
        };
      });
    },
  };
}

async function writeCodeCache() {
  const source = readFileSync(bundlePath, "utf8");
  const buildId = buildIdOf(source);
  const script = compileBundle(source, undefined);
  const { runCli } = runBundle(script);
  const home = mkdtempSync(join(tmpdir(), "snapkeep-build-cli-"));
  try {
    // Opens (creates) settings in a throwaway home and fails on the unknown host: no process runs.
    await runCli(["snapshot", "list", "no-such-host/vm"], {
      out: () => undefined,
      err: () => undefined,
      env: { SNAPKEEP_HOME: home },
    });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
  const temporary = `${codeCachePath(buildId)}.${process.pid}.tmp`;
  writeFileSync(temporary, script.createCachedData());
  renameSync(temporary, codeCachePath(buildId));
}
