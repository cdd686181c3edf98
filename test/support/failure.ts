import { expect } from "vitest";
import { SnapkeepError } from "../../core/errors.js";

/** The SnapkeepError a promise rejects with; fails the test if it resolves or throws anything else. */
export async function failure(promise: Promise<unknown>): Promise<SnapkeepError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(SnapkeepError);
    return error as SnapkeepError;
  }
  throw new Error("expected a rejection");
}
