import { describe, expect, it } from "vitest";

import { cronInWords } from "../../renderer/src/cron-words.js";

describe("cron in words", () => {
  it.each([
    ["*/15 * * * *", "Every 15 minutes"],
    ["*/1 * * * *", "Every minute"],
    ["5 * * * *", "Every hour at :05"],
    ["0 */6 * * *", "Every 6 hours at :00, from midnight"],
    ["30 2 * * *", "Every day at 02:30"],
    ["0 2,14 * * *", "Every day at 02:00 and 14:00"],
    ["30 2 * * 1-5", "Weekdays at 02:30"],
    ["0 3 * * 0,6", "Weekends at 03:00"],
    ["0 3 * * 7", "Every Sunday at 03:00"],
    ["0 3 * * mon,thu", "Every Monday and Thursday at 03:00"],
    ["0 4 1 * *", "Monthly on the 1st at 04:00"],
    ["0 4 31 * *", "Monthly on the 31st at 04:00 (not in months without one)"],
  ])("%s reads %s", (cron, words) => {
    expect(cronInWords(cron)).toBe(words);
  });

  it.each([
    "0 4 1 1 *",
    "0 4 1 * 1",
    "0-30/5 * * * *",
    "0 2 * * 1-3",
    "61 2 * * *",
    "0 2 * *",
    "@daily",
    "0 2 */2 * *",
    "*/0 * * * *",
  ])("%s stays an expression (no sentence it could get wrong)", (cron) => {
    expect(cronInWords(cron)).toBeNull();
  });
});
