import { z } from "zod";
import { SnapkeepError } from "../../errors.js";
import type { ImageSnapshot } from "../../domain/types.js";

/** What Snapkeep needs from an image: sizes and its internal snapshots, from either source below. */
export interface ImageState {
  readonly virtualSize: number;
  readonly actualSize: number | null;
  readonly format: string;
  readonly snapshots: readonly ImageSnapshot[];
}

// The same snapshot record shape is used by `qemu-img info --output=json` and QMP query-block.
const snapshotSchema = z.object({
  id: z.string(),
  name: z.string(),
  "date-sec": z.number(),
  "date-nsec": z.number(),
  "vm-state-size": z.number(),
});

export const imageInfoSchema = z.object({
  "virtual-size": z.number(),
  "actual-size": z.number().optional(),
  format: z.string(),
  // Absent, not empty, when the image has no snapshots.
  snapshots: z.array(snapshotSchema).optional(),
});

export function parseImageInfo(json: string): ImageState {
  return toImageState(parseJson(json, imageInfoSchema, "qemu-img info"));
}

export function toImageState(info: z.infer<typeof imageInfoSchema>): ImageState {
  return {
    virtualSize: info["virtual-size"],
    actualSize: info["actual-size"] ?? null,
    format: info.format,
    snapshots: (info.snapshots ?? []).map((s) => ({
      id: s.id,
      name: s.name,
      createdAt: new Date(s["date-sec"] * 1000 + Math.floor(s["date-nsec"] / 1e6)),
      vmStateSize: s["vm-state-size"],
    })),
  };
}

export function parseJson<T>(text: string, schema: z.ZodType<T>, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new SnapkeepError("UNEXPECTED_OUTPUT", `${what} did not print JSON: ${text.slice(0, 200)}`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new SnapkeepError(
      "UNEXPECTED_OUTPUT",
      `${what} printed JSON of an unexpected shape: ${parsed.error.issues[0]?.message ?? "invalid"}`,
    );
  }
  return parsed.data;
}

export type ImageReadResult =
  | { readonly ok: true; readonly image: ImageState }
  | { readonly ok: false; readonly missing: boolean; readonly code: number; readonly error: string };

/** Parses the output of imageInfoBatchArgs: one result per image, in the order given. */
export function parseImageInfoBatch(output: string, marker: string, expected: number): ImageReadResult[] {
  const pattern = new RegExp(`\\n${marker} (\\d+)@@\\n`, "g");
  const results: ImageReadResult[] = [];
  let start = 0;
  for (const match of output.matchAll(pattern)) {
    const body = output.slice(start, match.index).trim();
    start = match.index + match[0].length;
    if (match[1] === "0") {
      results.push({ ok: true, image: parseImageInfo(body) });
    } else {
      results.push({
        ok: false,
        missing: /No such file or directory/i.test(body),
        code: Number(match[1]),
        error: body.split("\n")[0] ?? "",
      });
    }
  }
  if (results.length !== expected) {
    throw new SnapkeepError(
      "UNEXPECTED_OUTPUT",
      `qemu-img info returned ${results.length} results for ${expected} images.`,
    );
  }
  return results;
}
