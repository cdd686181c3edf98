import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          environment: "node",
          // A zone with DST, so schedule and retention tests meet both clock changes every year.
          env: { TZ: "Europe/Berlin" },
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/integration/global-setup.ts"],
          environment: "node",
          // Real libvirtd, QEMU and sshd: one file at a time keeps VM start-up and port use predictable
          // on a 2-core machine, and the timeouts allow for a VM boot under load.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: "lvm",
          include: ["test/lvm/**/*.test.ts"],
          globalSetup: ["test/lvm/global-setup.ts"],
          environment: "node",
          // One guest, under software emulation on machines whose KVM cannot boot a Linux kernel:
          // every LVM command there takes seconds, a thick merge tens of seconds.
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 1_200_000,
        },
      },
    ],
  },
});
