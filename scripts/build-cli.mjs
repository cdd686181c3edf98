// Part of `npm run build`, after `tsc`: bundles the compiled CLI (dist/core/cli/main.js) into one
// CommonJS file, dist/cli/snapkeep.cjs, and writes V8's code cache for it (bin/bundle.js says why).
// The cache is made by a fresh `node` that loads the bundle as bin/snapkeep.js does and runs the
// commands people script most against stand-ins for virsh and qemu-img (WARM_UP below), so the
// bytecode of what they run is in it.
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
    plugins: [importMetaUrl(outDir), zodEnglishOnly()],
  });
  // esbuild escapes what is not ASCII in the code but keeps comments as written; one character
  // outside ASCII makes V8 hold the whole source as a two-byte string, read several times slower.
  // Escaping it in a comment changes nothing, except for the two that end a line comment.
  const text = result.outputFiles[0].text;
  if (/[\u2028\u2029]/.test(text)) {
    throw new Error("build-cli: the bundle holds a raw U+2028/U+2029; escaping it could change the code");
  }
  const code = text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
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
 * zod's `locales` namespace carries the messages of some fifty languages, a fifth of the bundle and
 * milliseconds of start-up; Snapkeep words zod's issues itself (domain/explain.ts) and uses only the
 * English default, which zod's schemas import directly. The namespace keeps `en` alone.
 */
function zodEnglishOnly() {
  return {
    name: "zod-english-only",
    setup(builder) {
      builder.onLoad({ filter: /[\\/]node_modules[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, () => ({
        contents: 'export { default as en } from "./en.js";\n',
        loader: "js",
      }));
    },
  };
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

/**
 * What the cache is made from: the commands people script most, run against stand-ins for virsh and
 * qemu-img (small scripts in a throwaway folder that print what the real tools print for a shut-off
 * VM with two disks), so the cache holds the bytecode of what a listing runs: the settings check,
 * the option parser, the domain XML and image parsers, the output and the error report. Nothing
 * outside the throwaway folders is read or changed; a stand-in that stops matching the real tool
 * only makes the cache cover less.
 */
const WARM_UP = [
  ["snapshot", "list", "local/warm-up", "--json"],
  ["snapshot", "list", "local/warm-up"],
  ["vm", "list", "--json"],
  ["vm", "list"],
  ["snapshot", "list", "no-such-host/vm"],
];

async function writeCodeCache() {
  const source = readFileSync(bundlePath, "latin1");
  const buildId = buildIdOf(source);
  const script = compileBundle(source, undefined);
  const { runCli } = runBundle(script);
  const scratch = mkdtempSync(join(tmpdir(), "snapkeep-build-cli-"));
  const tools = join(scratch, "bin");
  mkdirSync(tools);
  for (const [name, body] of Object.entries(standIns())) {
    writeFileSync(join(tools, name), `#!${process.execPath}\n${body}`, { mode: 0o755 });
  }
  const path = `${tools}:${process.env["PATH"] ?? "/usr/bin:/bin"}`;
  // The runner starts the tools with this process's PATH; the CLI reads its own from io.env.
  process.env["PATH"] = path;
  const report = process.env["SNAPKEEP_BUILD_DEBUG"] ? (text) => process.stderr.write(text) : () => undefined;
  try {
    for (const argv of WARM_UP) {
      await runCli(argv, {
        out: report,
        err: report,
        env: { SNAPKEEP_HOME: join(scratch, "home"), PATH: path },
      });
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const temporary = `${codeCachePath(buildId)}.${process.pid}.tmp`;
  writeFileSync(temporary, script.createCachedData());
  renameSync(temporary, codeCachePath(buildId));
}

/** `virsh` and `qemu-img` for the warm-up: one shut-off VM, two qcow2 disks, twenty snapshots. */
function standIns() {
  const uuid = "5f0c6a5e-7b1d-4c2e-9a3f-0000000c0de0";
  const disk = (target, slot) =>
    [
      "    <disk type='file' device='disk'>",
      "      <driver name='qemu' type='qcow2'/>",
      `      <source file='/nonexistent/snapkeep-warm-up-${target}.qcow2'/>`,
      `      <target dev='${target}' bus='virtio'/>`,
      `      <address type='pci' domain='0x0000' bus='0x00' slot='${slot}' function='0x0'/>`,
      "    </disk>",
    ].join("\n");
  const xml = [
    "<domain type='kvm'>",
    "  <name>warm-up</name>",
    `  <uuid>${uuid}</uuid>`,
    "  <memory unit='KiB'>32768</memory>",
    "  <vcpu placement='static'>1</vcpu>",
    "  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type><boot dev='hd'/></os>",
    "  <devices>",
    "    <emulator>/usr/bin/qemu-system-x86_64</emulator>",
    disk("vda", "0x02"),
    disk("vdb", "0x03"),
    "    <interface type='network'><mac address='52:54:00:00:0c:de'/><source network='default'/><model type='virtio'/></interface>",
    "  </devices>",
    "</domain>",
    "",
  ].join("\n");
  const snapshots = Array.from({ length: 20 }, (_, i) => ({
    id: String(i + 1),
    name: i % 2 === 0 ? `snapkeep:manual:warm-up-${i}` : `other-tool-${i}`,
    "vm-state-size": 0,
    "date-sec": 1_700_000_000 + i * 3600,
    "date-nsec": 0,
    "vm-clock-sec": 0,
    "vm-clock-nsec": 0,
    icount: 0,
  }));
  const info = { "virtual-size": 1 << 30, filename: "x", format: "qcow2", "actual-size": 1 << 20, snapshots };
  const virsh = `
const uuid = ${JSON.stringify(uuid)};
const answer = (words) => {
  switch (words[0]) {
    case "domuuid": return uuid + "\\n";
    case "dumpxml": return ${JSON.stringify(xml)};
    case "domstate": return "shut off\\n\\n";
    case "list": return words.includes("--all") || words.includes("--state-shutoff") ? uuid + "\\n\\n" : "\\n";
    default: return "";
  }
};
const rest = process.argv.slice(5);
process.stdout.write(
  rest.length === 1
    ? rest[0].split(" ; ").map((c) => (c.startsWith("echo ") ? c.slice(5) + "\\n" : answer(c.split(" ").map((w) => w.replace(/^'(.*)'$/, "$1"))))).join("")
    : answer(rest),
);
`;
  const qemuImg = `process.stdout.write(${JSON.stringify(JSON.stringify(info, null, 4))} + "\\n");\n`;
  return { virsh, "qemu-img": qemuImg };
}

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
