/**
 * Prometheus' own text-format parser (the official Python client's, from Debian's
 * python3-prometheus-client): what a scraper would make of /metrics. It throws on a malformed
 * exposition, so a test that reads through it also checks the format.
 */
import { execFileSync } from "node:child_process";

export interface MetricSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface MetricFamily {
  readonly name: string;
  readonly type: string;
  readonly samples: readonly MetricSample[];
}

const PARSE = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = [
    {"name": f.name, "type": f.type,
     "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]}
    for f in text_string_to_metric_families(sys.stdin.read())
]
print(json.dumps(families))
`;

export function parseMetrics(text: string): MetricFamily[] {
  // Debian's interpreter, where Debian's package put the parser (not one on PATH from elsewhere).
  const out = execFileSync("/usr/bin/python3", ["-c", PARSE], { input: text, encoding: "utf8" });
  return JSON.parse(out) as MetricFamily[];
}

/** The value of the one sample named `name` whose labels include `labels`. */
export function sampleValue(
  families: readonly MetricFamily[],
  name: string,
  labels: Record<string, string> = {},
): number {
  const found = families
    .flatMap((f) => f.samples)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length !== 1 || found[0] === undefined) {
    throw new Error(`${found.length} samples ${name} ${JSON.stringify(labels)} in the metrics`);
  }
  return found[0].value;
}
