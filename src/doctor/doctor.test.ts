import { test } from "node:test";
import assert from "node:assert/strict";
import { silentLogger } from "../log.js";
import { Doctor, type DoctorDeps } from "./doctor.js";
import type { Finding, HostState, RecordState, RepairResult } from "./types.js";

const emptyHost = (): HostState => ({ shims: [], runc: [], mounts: [], netns: [], bundles: [], podDirs: [], shimHomes: [] });
const emptyRecords = (): RecordState => ({ tasks: [], shims: [], pods: [], containers: [], teardowns: [] });

/** A fake host/records pair the test mutates; repairs are recorded and applied to the fake host. */
function fake() {
  const host = emptyHost();
  let records = emptyRecords();
  const repaired: string[] = [];
  let hostReads = 0;
  const deps: DoctorDeps = {
    log: silentLogger,
    records: () => structuredClone(records),
    host: async () => {
      hostReads++;
      return structuredClone(host);
    },
    repair: async (f: Finding): Promise<RepairResult> => {
      repaired.push(`${f.kind} ${f.object}`);
      if (f.kind === "orphan-netns") host.netns = host.netns.filter((n) => n !== f.name);
      if (f.kind === "missing-netns") return { kind: f.kind, object: f.object, outcome: "manual", message: "by hand" };
      return { kind: f.kind, object: f.object, outcome: "repaired", message: "done" };
    },
  };
  return { host, setRecords: (r: RecordState) => (records = r), repaired, deps, hostReads: () => hostReads };
}

test("report only: findings listed, nothing repaired, not clean; metrics count by kind", async () => {
  const f = fake();
  f.host.netns.push("skiff-ns-a", "skiff-ns-b");
  const doc = new Doctor(f.deps);
  const r = await doc.check({ repair: false });
  assert.deepEqual(r.findings.map((x) => x.object), ["skiff-ns-a", "skiff-ns-b"]);
  assert.deepEqual(r.repairs, []);
  assert.equal(r.clean, false);
  assert.deepEqual(f.repaired, []);
  const m = doc.metrics();
  assert.equal(m.checks, 1);
  assert.equal(m.findings["orphan-netns"], 2);
  assert.equal(m.findings["orphan-shim"], 0);
  assert.equal(m.lastFindings, 2);
  await doc.close();
});

test("repair fixes what is still drift at the recheck and skips what gained a record", async () => {
  const f = fake();
  f.host.netns.push("skiff-ns-a", "skiff-ns-b");
  let calls = 0;
  const records = f.deps.records;
  // Between the check and the repairs, a pod record claims skiff-ns-b.
  f.deps.records = () => {
    const r = records();
    if (++calls > 1) r.pods.push({ id: "b", state: "creating", netns: "skiff-ns-b", dir: "/pods/b" });
    return r;
  };
  const doc = new Doctor(f.deps);
  const r = await doc.check({ repair: true });
  assert.deepEqual(f.repaired, ["orphan-netns skiff-ns-a"]);
  assert.deepEqual(r.repairs.map((x) => [x.object, x.outcome]), [["skiff-ns-a", "repaired"], ["skiff-ns-b", "skipped"]]);
  assert.equal(r.clean, true);
  assert.equal(f.hostReads(), 2, "the host is looked at twice before repairing");
  assert.deepEqual(doc.metrics().repairs, { repaired: 1, queued: 0, skipped: 1, manual: 0, failed: 0 });
  await doc.close();
});

test("a finding that cannot be repaired automatically leaves the report unclean", async () => {
  const f = fake();
  f.setRecords({ ...emptyRecords(), pods: [{ id: "p", state: "ready", netns: "skiff-ns-p", dir: "/pods/p" }] });
  const doc = new Doctor(f.deps);
  const r = await doc.check({ repair: true });
  // The ready pod has no task either (repaired by the fake); its lost netns needs a person.
  assert.deepEqual(r.repairs.map((x) => [x.kind, x.outcome]), [["pod-without-task", "repaired"], ["missing-netns", "manual"]]);
  assert.equal(r.clean, false);
  await doc.close();
});

test("checks never overlap: the second waits for the first", async () => {
  const f = fake();
  let active = 0;
  let maxActive = 0;
  const host = f.deps.host;
  f.deps.host = async (s) => {
    active++;
    maxActive = Math.max(maxActive, active);
    await new Promise((r) => setTimeout(r, 20));
    active--;
    return host(s);
  };
  const doc = new Doctor(f.deps);
  await Promise.all([doc.check({ repair: false }), doc.check({ repair: false }), doc.check({ repair: false })]);
  assert.equal(maxActive, 1);
  assert.equal(doc.metrics().checks, 3);
  await doc.close();
});

test("the reconciler checks periodically, repairs only when configured, and stops on close", async () => {
  const f = fake();
  f.host.netns.push("skiff-ns-a");
  const doc = new Doctor(f.deps);
  doc.startPeriodic({ intervalMs: 10, repair: false });
  const until = Date.now() + 2000;
  while (doc.metrics().checks < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  assert.ok(doc.metrics().checks >= 3, "ran at least three times");
  assert.deepEqual(f.repaired, [], "report only");
  await doc.close();
  const n = doc.metrics().checks;
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(doc.metrics().checks, n, "no check after close");

  const g = fake();
  g.host.netns.push("skiff-ns-a");
  const fixer = new Doctor(g.deps);
  fixer.startPeriodic({ intervalMs: 10, repair: true });
  while (g.repaired.length === 0 && Date.now() < until + 2000) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(g.repaired, ["orphan-netns skiff-ns-a"]);
  await fixer.close();
});

test("interval 0 turns the reconciler off; a failing host read counts as a check error", async () => {
  const f = fake();
  f.deps.host = async () => {
    throw new Error("proc unreadable");
  };
  const doc = new Doctor(f.deps);
  doc.startPeriodic({ intervalMs: 0, repair: false });
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(doc.metrics().checks, 0);
  await assert.rejects(doc.check({ repair: false }), /proc unreadable/);
  assert.equal(doc.metrics().checkErrors, 1);
  await doc.close();
});
