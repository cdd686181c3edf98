import { SnapkeepError, quoteInput } from "../errors.js";

/** Splits HOST/VM at the first slash: host names never contain one, and libvirt refuses it in VM names. */
export function splitVmRef(ref: string): [string, string] {
  const slash = ref.indexOf("/");
  if (slash <= 0 || slash === ref.length - 1) {
    throw new SnapkeepError("INVALID_INPUT", `${quoteInput(ref)} is not HOST/VM.`, {
      hint: "For example: local/web01",
    });
  }
  return [ref.slice(0, slash), ref.slice(slash + 1)];
}
