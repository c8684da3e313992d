import { test } from "node:test";
import assert from "node:assert/strict";
import { defaultDoctorConfig, doctorFromObject } from "./config.js";
import { configFromObject } from "../config.js";
import { ErrorCode, SkiffError } from "../errors.js";

test("defaults: every 5 minutes, report only", () => {
  assert.deepEqual(defaultDoctorConfig(), { intervalMs: 300_000, repair: false, bundleGraceMs: 60_000 });
  assert.deepEqual(configFromObject({}).doctor, defaultDoctorConfig());
});

test("[doctor] in the daemon config", () => {
  const cfg = configFromObject({ doctor: { interval_ms: 0, repair: true, bundle_grace_ms: 5 } });
  assert.deepEqual(cfg.doctor, { intervalMs: 0, repair: true, bundleGraceMs: 5 });
});

test("bad [doctor] values are InvalidArgument naming the key", () => {
  const bad = (raw: unknown, re: RegExp) =>
    assert.throws(() => doctorFromObject(raw, defaultDoctorConfig()), (e: unknown) => e instanceof SkiffError && e.code === ErrorCode.InvalidArgument && re.test(e.message));
  bad({ interval_ms: -1 }, /doctor\.interval_ms must be a non-negative integer/);
  bad({ interval_ms: "5m" }, /doctor\.interval_ms/);
  bad({ repair: "yes" }, /doctor\.repair must be a boolean/);
  bad({ intervall_ms: 1 }, /unknown key "doctor\.intervall_ms"/);
  bad([1], /doctor must be a table/);
});
