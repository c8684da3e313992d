/**
 * The reliability suite at full size (run by `make soak`), with containerd 1.6.20 side by side
 * for the two seed scenarios: the same pods, faults and grpc-js client against both runtimes in
 * one run, one after the other, and one table. Assertions are on skiff's results only (and on
 * containerd's run having happened: it is expected to leak shims in scenario 1).
 *
 * Sizes: SKIFF_SOAK_PODS (default 20) pods for scenarios 1, 2, 4, 5, 6; SKIFF_SOAK_LIFECYCLES
 * (default 200) for scenario 3. `SKIFF_SOAK_PODS=3 SKIFF_SOAK_LIFECYCLES=5` is the short
 * comparison. SKIFF_FAULT_SEED repeats the random schedules. The daemon is the compiled one
 * (`make soak` builds first), or the sources with SKIFF_SOAK_SRC=1.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { makeRng } from "../faults/random.js";
import type { FaultyCniPlugin } from "../faults/cni-plugin.js";
import type { SmallFs } from "../faults/full-disk.js";
import type { ScenarioResult } from "../reliability/cri.js";
import { ioPressureTeardown, heldPipeTeardown, shimKills } from "../reliability/scenarios.js";
import { daemonKills } from "../reliability/restarts.js";
import { cniFaults, fullStateDir, withCniFaults, withFullState } from "../reliability/host-faults.js";
import { startContainerd, startSkiff, type Target } from "../reliability/targets.js";
import { assertPerfect, details, table } from "../reliability/report.js";

const PODS = Number(process.env.SKIFF_SOAK_PODS ?? 20);
const LIFECYCLES = Number(process.env.SKIFF_SOAK_LIFECYCLES ?? 200);
/** The compiled daemon unless SKIFF_SOAK_SRC=1 (then the sources through tsx). */
const built = process.env.SKIFF_SOAK_SRC !== "1";
const results: ScenarioResult[] = [];

after(() => {
  console.log(`\nreliability soak, ${PODS} pods, ${LIFECYCLES} lifecycles, ${new Date().toISOString()}\n${table(results)}\n`);
  for (const r of results) if (r.errors.length || r.leftovers.length || r.exitErrors.length) console.log(details(r));
});

test(`seed scenarios, skiff next to containerd 1.6.20: ${PODS} pods each`, { timeout: 60 * 60_000 }, async (t) => {
  const targets: Target[] = [];
  t.after(async () => {
    for (const x of targets) {
      const left = await x.close();
      if (x.name === "skiff") assert.deepEqual(left, [], "skiff's env is clean");
    }
  });
  const skiff = await startSkiff({ built });
  targets.push(skiff);
  const containerd = await startContainerd();
  targets.push(containerd);
  const mine: ScenarioResult[] = [];
  for (const scenario of [ioPressureTeardown, heldPipeTeardown]) {
    for (const target of [skiff, containerd]) {
      const r = await scenario(target, PODS);
      results.push(r);
      if (target === skiff) mine.push(r);
      else assert.equal(r.exitsTotal, PODS, `containerd's run of ${r.scenario} happened:\n${details(r)}`);
    }
  }
  for (const r of mine) assertPerfect(r, PODS);
});

test(`3: skiffd SIGKILLed in ${LIFECYCLES} pod lifecycles`, { timeout: 4 * 60 * 60_000 }, async (t) => {
  const target = await startSkiff({ built });
  t.after(async () => assert.deepEqual(await target.close(), []));
  const r = await daemonKills(target, LIFECYCLES, makeRng());
  results.push(r);
  assertPerfect(r, LIFECYCLES);
});

test(`4: shims SIGKILLed at random, ${PODS} pods`, { timeout: 30 * 60_000 }, async (t) => {
  const target = await startSkiff({ built });
  t.after(async () => assert.deepEqual(await target.close(), []));
  const r = await shimKills(target, PODS, makeRng());
  results.push(r);
  assertPerfect(r, PODS);
});

test(`5: CNI ADD failing and DEL hanging, ${PODS} pods`, { timeout: 30 * 60_000 }, async (t) => {
  const f: { plugin?: FaultyCniPlugin } = {};
  const target = await startSkiff({ built, prepare: (env) => withCniFaults(env, f) });
  t.after(async () => assert.deepEqual(await target.close(), []));
  const r = await cniFaults(target, f.plugin!, PODS);
  results.push(r);
  assertPerfect(r, PODS);
});

test(`6: state dir full, ${PODS} pods`, { timeout: 30 * 60_000 }, async (t) => {
  const f: { fs?: SmallFs } = {};
  const target = await startSkiff({ built, prepare: (env) => withFullState(env, f) });
  target.ignoreMounts = [target.env.cfg.state];
  target.beforeCleanup = () => f.fs!.unmount();
  t.after(async () => assert.deepEqual(await target.close(), []));
  const r = await fullStateDir(target, f.fs!, PODS);
  results.push(r);
  assertPerfect(r, PODS);
});
