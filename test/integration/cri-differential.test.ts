/* eslint-disable @typescript-eslint/no-explicit-any */
/**
 * Differential test: the same CRI lifecycle scenario (test/peer/scenario.ts) against skiff and
 * against Debian's containerd 1.6.20 (test-owned, test/peer/containerd.ts), with the same pause
 * and busybox images and the same client. Normalized transcripts are compared step by step,
 * field by field (ids, times, pids, addresses and temp paths blanked). Every intended difference
 * is listed below with its reason; anything else that differs fails the test.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { defaultConflist } from "../../src/cni/config.js";
import { run } from "../../src/util/exec.js";
import { makeEnv, cleanupEnv, startDaemon } from "./harness.js";
import { criClients } from "./cri-client.js";
import { startPeerContainerd, type PeerContainerd } from "../peer/containerd.js";
import { builtinImageArchive, BUSYBOX_IMAGE, PAUSE_IMAGE } from "../peer/images.js";
import { lifecycleScenario, normalize, type Transcript, type TranscriptEntry } from "../peer/scenario.js";

type Entry = TranscriptEntry & { response?: Record<string, unknown> };
interface Difference {
  step: RegExp;
  why: string;
  /** Turns containerd's normalized entry into the one skiff gives by design. */
  expect(containerd: Entry, skiff: Entry): Entry;
}

const ok = (response: Record<string, unknown>): Entry => ({ step: "", response });
const err = (code: grpc.status): Entry => ({ step: "", error: { code, details: "<details>" } });
const withStep = (e: Entry, step: string): Entry => ({ ...e, step });

/** The intended differences, each with its reason. */
const DIFFERENCES: Difference[] = [
  {
    step: /^Version$/,
    why: "the runtime names itself (runtime_name/runtime_version); the CRI API version is the same",
    expect: (c, s) => ({ ...c, response: { ...c.response, runtime_name: "skiff", runtime_version: s.response?.runtime_version } }),
  },
  {
    step: /^ExecSync\(exited\)$/,
    why: "containerd 1.6 answers Unknown for a container that is not running; its state is a failed precondition",
    expect: () => err(grpc.status.FAILED_PRECONDITION),
  },
  {
    step: /^ExecSync\(timeout 1, sleep 10\)$/,
    why: "on timeout skiff kills the exec process and returns the output so far with its exit code (137) instead of DeadlineExceeded without output, so probes see what the command printed",
    expect: () => ok({ exit_code: 137, stdout: "", stderr: "" }),
  },
  {
    step: /^StopContainer\(unknown\)$|^StopPodSandbox\(removed\)$|^StopPodSandbox\(ready\)$/,
    why: "the CRI contract makes Stop* idempotent (an unknown id is success); containerd 1.6 answers NotFound",
    expect: () => ok({}),
  },
  {
    step: /^Status$/,
    why: "Status.runtime_handlers (RuntimeClass handlers and their features) is newer than containerd 1.6, which leaves it empty",
    expect: (c, s) => ({ ...c, response: { ...c.response, runtime_handlers: (s.response as { runtime_handlers?: unknown })?.runtime_handlers } }),
  },
  {
    step: /^(ContainerStatus|ListContainers)/,
    why: "newer CRI fields containerd 1.6 leaves empty: image.user_specified_image and image_id are filled",
    expect: (c, s) => patchImageFields(c, s),
  },
  {
    step: /.*/,
    why: "error messages: skiff's name the object (id, name or path); only the codes are compared",
    expect: (c) => c,
  },
];

/** Copies skiff's user_specified_image / image_id into containerd's containers and statuses. */
function patchImageFields(c: Entry, s: Entry): Entry {
  const fix = (cc: Record<string, any>, ss: Record<string, any> | undefined) => ({
    ...cc,
    image_id: ss?.image_id ?? cc.image_id,
    image: { ...cc.image, user_specified_image: ss?.image?.user_specified_image ?? cc.image?.user_specified_image },
  });
  const r = c.response as Record<string, any> | undefined;
  const sr = s.response as Record<string, any> | undefined;
  if (!r) return c;
  if (r.status) return { ...c, response: { ...r, status: fix(r.status, sr?.status) } };
  if (Array.isArray(r.containers)) return { ...c, response: { ...r, containers: r.containers.map((x: Record<string, any>, i: number) => fix(x, sr?.containers?.[i])) } };
  return c;
}

function blankDetails(e: Entry): Entry {
  return e.error ? { ...e, error: { code: e.error.code, details: "<details>" } } : e;
}

async function network(dir: string, name: string): Promise<{ confDir: string; bridge: string }> {
  const bridge = `skd${randomBytes(3).toString("hex")}`;
  const confDir = path.join(dir, `${name}-net.d`);
  await mkdir(confDir);
  const conf = defaultConflist({ subnet: `10.${randomInt(200, 250)}.0.0/16`, bridge, name: `${bridge}-net`, dataDir: path.join(dir, `${name}-ipam`) });
  await writeFile(path.join(confDir, "10-diff.conflist"), JSON.stringify(conf));
  return { confDir, bridge };
}

test("skiff and containerd 1.6.20 answer the lifecycle scenario alike", { timeout: 240_000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-diff-"));
  let peer: PeerContainerd | undefined;
  const peerNet = await network(dir, "peer");
  t.after(async () => {
    await peer?.stop().catch((e: unknown) => console.error("peer stop:", e));
    await run("ip", ["link", "del", peerNet.bridge]);
    await rm(dir, { recursive: true, force: true });
  });

  // containerd first, on its own network.
  const archive = await builtinImageArchive(dir);
  peer = await startPeerContainerd({ cniConfDir: peerNet.confDir, images: [{ archive }], sandboxImage: PAUSE_IMAGE });
  const peerLogs = path.join(dir, "logs"); // same last path element as skiff's, for the comparison
  await mkdir(peerLogs);
  const pc = criClients(peer.socket);
  let theirs: Transcript;
  try {
    theirs = normalize((await lifecycleScenario(pc, { logDir: peerLogs, image: BUSYBOX_IMAGE })).map((e) => blankDetails(e as Entry)));
  } finally {
    pc.close();
  }
  await peer.stop();
  peer = undefined;

  // skiff.
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  const d = await startDaemon(env);
  const sc = criClients(env.cfg.socket);
  let ours: Transcript;
  try {
    const logs = path.join(env.dir, "logs");
    await mkdir(logs);
    ours = normalize((await lifecycleScenario(sc, { logDir: logs, image: BUSYBOX_IMAGE })).map((e) => blankDetails(e as Entry)));
  } finally {
    sc.close();
    assert.deepEqual(await cleanupEnv(env, d), []);
  }

  assert.deepEqual(
    ours.map((e) => e.step),
    theirs.map((e) => e.step),
    "both runs reached the same steps",
  );
  const mismatches: string[] = [];
  for (let i = 0; i < ours.length; i++) {
    const s = blankDetails(ours[i] as Entry);
    let c = blankDetails(theirs[i] as Entry);
    const diff = DIFFERENCES.find((x) => x.step.test(c.step));
    if (diff) c = withStep(blankDetails(diff.expect(c, s)), c.step);
    try {
      assert.deepEqual(s, c);
    } catch {
      mismatches.push(`step ${c.step}\n  skiff:      ${JSON.stringify(s)}\n  containerd: ${JSON.stringify(theirs[i])}`);
    }
  }
  assert.equal(mismatches.length, 0, `unintended differences:\n${mismatches.join("\n")}`);
});
