import { test } from "node:test";
import assert from "node:assert/strict";
import { formatReport } from "./format.js";
import type { DoctorReport } from "./types.js";

const finding = { kind: "orphan-netns", object: "skiff-ns-x", message: 'network namespace "skiff-ns-x" belongs to no pod record', name: "skiff-ns-x" } as const;

test("a clean report says so", () => {
  const r: DoctorReport = { checkedAt: "t", findings: [], repairs: [], clean: true };
  assert.equal(formatReport(r), "no drift: the host matches skiff's records");
});

test("findings are listed with their object and message, and the next step", () => {
  const r: DoctorReport = { checkedAt: "t", findings: [finding], repairs: [], clean: false };
  const text = formatReport(r);
  assert.match(text, /^orphan-netns {2}skiff-ns-x\n/);
  assert.match(text, /belongs to no pod record/);
  assert.match(text, /1 finding\(s\); run with --repair/);
});

test("repairs are shown under their finding; failures count as not repaired", () => {
  const ok: DoctorReport = {
    checkedAt: "t",
    findings: [finding],
    repairs: [{ kind: "orphan-netns", object: "skiff-ns-x", outcome: "repaired", message: "ip netns delete skiff-ns-x" }],
    clean: true,
  };
  assert.match(formatReport(ok), /-> repaired: ip netns delete skiff-ns-x\n1 finding\(s\), all repaired$/);
  const bad = { ...ok, repairs: [{ ...ok.repairs[0]!, outcome: "failed" as const, message: "boom" }], clean: false };
  assert.match(formatReport(bad), /-> failed: boom\n1 finding\(s\), 1 not repaired$/);
});
