// Renders the app icon and the tray icons from the SVGs in build/ into the PNGs that
// electron-builder and the tray use (committed; run again after changing an SVG):
//   node scripts/icons.mjs
// Debian's Chromium draws them (playwright-core drives it), so the PNGs match the SVGs exactly.
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, URL } from "node:url";
import { chromium } from "playwright-core";

const build = fileURLToPath(new URL("../build/", import.meta.url));

/** [svg, png, size]: the app icon at the sizes Linux desktops pick from, and 1x/2x tray icons. */
const renders = [
  ["icon.svg", "icon.png", 1024],
  ...[16, 24, 32, 48, 64, 128, 256, 512].map((size) => ["icon.svg", `icons/${size}x${size}.png`, size]),
  ...["ok", "running", "attention"].flatMap((state) => [
    [`tray/tray-${state}.svg`, `tray/tray-${state}.png`, 22],
    [`tray/tray-${state}.svg`, `tray/tray-${state}@2x.png`, 44],
  ]),
];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  const page = await browser.newPage();
  for (const [svg, png, size] of renders) {
    const markup = readFileSync(join(build, svg), "utf8");
    await page.setViewportSize({ width: size, height: size });
    await page.setContent(
      `<html><body style="margin:0;background:transparent">` +
        `<img style="display:block;width:${size}px;height:${size}px" src="data:image/svg+xml;base64,${Buffer.from(markup).toString("base64")}">` +
        `</body></html>`,
    );
    mkdirSync(dirname(join(build, png)), { recursive: true });
    await page.screenshot({ path: join(build, png), omitBackground: true });
    console.log(`build/${png} (${size}x${size})`);
  }
} finally {
  await browser.close();
}
