/**
 * A seeded fuzz test of the CRI socket: 1,000 random and mutated requests (dropped fields, empty,
 * huge and unicode strings, "../" paths, real and random ids, negative and out-of-range numbers,
 * random enums and label maps) to a running daemon. Every call ends OK or with an expected error
 * code of that RPC (see EXPECT: never Internal or Unknown, never Unimplemented, and
 * DeadlineExceeded only where the request asks for a long call), the daemon stays up, and
 * afterwards nothing is left.
 *
 * The seed is printed; SKIFF_FUZZ_SEED=<n> replays a run. Successful RunPodSandbox calls are
 * bounded (at most MAX_PODS, at most MAX_LIVE_PODS at once) so the run stays short.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { makeEnv, cleanupEnv, startDaemon, noteShims } from "./harness.js";
import { criClients, detailsOf, type Reply } from "./cri-client.js";
import { podConfig, ctrConfig } from "./cri-helpers.js";
import { listNetns, NETNS_PREFIX } from "../../src/cni/netns.js";
import { makeRng } from "../faults/random.js";

const CALLS = 1000;
const MAX_PODS = 10;
const MAX_LIVE_PODS = 2;
const MAX_LIVE_CONTAINERS = 6;
const CALL_DEADLINE_MS = 6_000;

const S = grpc.status;
/** Refusals of a request that is malformed or too large, which any RPC may answer. */
const BAD_REQUEST = [S.INVALID_ARGUMENT, S.OUT_OF_RANGE, S.RESOURCE_EXHAUSTED];

/** The suite's seeded generator (test/faults/random.ts), with the picks the mutations need. */
function prng(seed: number) {
  const { next, int } = makeRng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const chance = (p: number) => next() < p;
  return { next, int, pick, chance };
}
type Rng = ReturnType<typeof prng>;

type Json = string | number | boolean | null | undefined | Json[] | { [k: string]: Json };

/** A request as printed in a report: long strings shortened. */
function show(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === "string" && x.length > 80 ? `${x.slice(0, 40)}…<${x.length} chars>` : x));
}

test("CRI fuzz: 1,000 random and mutated requests", { timeout: 300_000 }, async (t) => {
  const seed = process.env.SKIFF_FUZZ_SEED ? Number(process.env.SKIFF_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
  console.log(`# cri-fuzz seed ${seed} (replay with SKIFF_FUZZ_SEED=${seed})`);
  t.diagnostic(`seed ${seed}`);
  const r: Rng = prng(seed);

  const env = await makeEnv();
  env.cfg.builtinImages = true;
  const d = await startDaemon(env);
  const { runtime, image, close } = criClients(env.cfg.socket);
  t.after(async () => {
    close();
    assert.deepEqual(await cleanupEnv(env, d), []);
  });
  // Deep enough that a few "../" in a log path stay inside the test's temp dir.
  const logDir = path.join(env.dir, "l1", "l2", "l3", "l4", "logs");
  await mkdir(logDir, { recursive: true });
  const hostDir = path.join(env.dir, "hostdir");
  await mkdir(hostDir);

  const livePods: string[] = [];
  const liveCtrs: string[] = [];
  const seenIds: string[] = [];
  let podsMade = 0;

  // ---- value generators ----
  const hex = (n: number) => Array.from({ length: n }, () => r.pick("0123456789abcdef".split(""))).join("");
  const unicode = () => r.pick(["ünïcödé", "名前", "😀🚀", "\u202eevil", "a\u0000b", "x\ny", "tab\there", "ʎ̶̢̛"]);
  const huge = () => r.pick(["x", "é", "../"]).repeat(r.int(1000, 65536 / 3));
  const dotdot = () => r.pick(["../", "../../x", "./../l4/y", "a/../../b", "..", "/..", "/nonexistent/../nonexistent2"]);
  const anyId = (): string =>
    r.pick([
      () => "",
      () => hex(64),
      () => r.pick(seenIds.length ? seenIds : [hex(64)]),
      () => r.pick(seenIds.length ? seenIds : [hex(64)]).slice(0, r.int(1, 12)),
      () => r.pick(livePods.length ? livePods : [hex(64)]),
      () => r.pick(liveCtrs.length ? liveCtrs : [hex(64)]),
      () => huge(),
      () => unicode(),
      () => dotdot(),
    ])();
  const rstr = (): string =>
    r.pick([() => "", () => "a", () => hex(r.int(1, 20)), unicode, huge, dotdot, () => `/${hex(8)}`, () => anyId()])();
  const rnum = (): number =>
    r.pick([() => 0, () => -1, () => r.int(-1000, 1000), () => 2 ** 31 - 1, () => -(2 ** 31), () => r.int(0, 10)])();
  const rint64 = (): number | string =>
    r.pick([() => rnum(), () => "9223372036854775807", () => "-9223372036854775808", () => -2, () => 2 ** 53])();
  const labels = (): Record<string, string> => {
    const out: Record<string, string> = {};
    for (let i = r.int(0, 5); i > 0; i--) out[rstr()] = rstr();
    return out;
  };
  /** Enum fields (grpc-js takes their numbers too, known or not). */
  const ENUMS = new Set(["state", "network", "pid", "ipc", "propagation", "protocol"]);
  /** Fields whose proto type is int64 (numbers or decimal strings are both fine for grpc-js). */
  const INT64 = new Set(["timeout", "cpu_period", "cpu_quota", "cpu_shares", "memory_limit_in_bytes", "oom_score_adj", "value", "memory_swap_limit_in_bytes"]);

  /**
   * Applies one random mutation somewhere in `v` (recursively) and returns it: drop a field, empty
   * it, replace a string, a number (same wire type), a map, or an array element.
   */
  function mutate(v: Json, key = ""): Json {
    if (Array.isArray(v)) {
      // Stay wire-compatible: messages stay messages, strings stay strings.
      // (An empty array's element type is unknown: it stays empty.)
      if (v.length === 0) return [];
      const strings = v.every((x) => typeof x === "string");
      const choice = r.int(0, 3);
      if (choice === 0) return strings ? r.pick([[], [rstr()], [...v, rstr()]]) : [];
      if (choice === 1) return [...v, v[r.int(0, v.length - 1)]!];
      const i = r.int(0, v.length - 1);
      const copy = [...v];
      copy[i] = mutate(copy[i], key);
      return copy;
    }
    if (v !== null && typeof v === "object") {
      const keys = Object.keys(v);
      if (keys.length === 0 || r.chance(0.1)) return key.endsWith("labels") || key.endsWith("annotations") || key === "sysctls" ? labels() : {};
      const k = r.pick(keys);
      const copy = { ...v };
      if (r.chance(0.2)) delete copy[k];
      else copy[k] = mutate(copy[k], k);
      return copy;
    }
    if (INT64.has(key)) return rint64();
    if (typeof v === "string") return k8sishString(key);
    if (typeof v === "number") return rnum();
    if (typeof v === "boolean") return !v;
    return rstr();
  }
  /** A replacement for a string or enum field; paths the daemon writes to stay inside env.dir. */
  function k8sishString(key: string): Json {
    if (key.endsWith("_id")) return anyId();
    if (ENUMS.has(key)) return r.int(-1, 6);
    if (key === "log_directory") return r.pick([logDir, "", path.join(logDir, "..", "..", "nosuch"), path.join(env.dir, "missing"), path.join(logDir, unicode())]);
    if (key === "log_path") return r.pick(["", "c.log", "../c.log", "../../x.log", "sub/c.log", "a/../../b.log", `${unicode()}.log`, `${"n".repeat(300)}.log`, "..", "."]);
    if (key === "host_path") return r.pick([hostDir, "", "rel", "../x", path.join(hostDir, "..", "hostdir"), path.join(env.dir, "missing"), unicode(), huge()]);
    return rstr();
  }
  const mutateN = (v: Json): Json => {
    let out = v;
    for (let i = r.int(0, 3); i > 0; i--) out = mutate(out);
    return out;
  };

  // ---- valid requests to start from ----
  const podName = () => r.pick(["fa", "fb", "fc", "fd"]);
  const validPod = (): Json => ({
    config: podConfig(podName(), logDir, {
      ...(r.chance(0.3) ? { linux: { sysctls: { "net.ipv4.ip_unprivileged_port_start": "0" }, security_context: { namespace_options: { pid: r.pick(["POD", "CONTAINER"]) } } } } : {}),
      ...(r.chance(0.2) ? { port_mappings: [{ protocol: "TCP", container_port: 80, host_port: 0 }] } : {}),
      ...(r.chance(0.2) ? { dns_config: { servers: ["10.0.0.10"], searches: ["svc.local"], options: ["ndots:5"] } } : {}),
    }) as Json,
    runtime_handler: r.pick(["", "", "runc"]),
  });
  const cmd = () =>
    r.pick([
      ["true"],
      ["sleep", "3600"],
      ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
      ["sh", "-c", "echo out; echo err >&2; exit 7"],
      ["nosuchbinary"],
    ]);
  const readyPods = () => livePods.filter((id) => d.cri.pods.docs.find(id)?.state === "ready");
  const validCtr = (): Json => ({
    pod_sandbox_id: r.pick(readyPods().length ? readyPods() : livePods.length ? livePods : [hex(64)]),
    config: ctrConfig(r.pick(["ca", "cb", "cc", "cd"]), cmd(), {
      ...(r.chance(0.3) ? { mounts: [{ container_path: "/data", host_path: hostDir, readonly: r.chance(0.5), propagation: "PROPAGATION_PRIVATE" }] } : {}),
      ...(r.chance(0.3) ? { envs: [{ key: "A", value: unicode() }] } : {}),
      ...(r.chance(0.3) ? { linux: { resources: { cpu_shares: 512, memory_limit_in_bytes: 64 * 1024 * 1024 } } } : {}),
      ...(r.chance(0.2) ? { working_dir: "/tmp" } : {}),
    }) as Json,
  });
  const ctrId = () => (r.chance(0.7) && liveCtrs.length ? r.pick(liveCtrs) : anyId());
  /** A live container in `state` if there is one (so starts and execs reach the runtime). */
  const ctrIn = (state: string) => {
    const xs = liveCtrs.filter((id) => d.cri.ctrs.docs.find(id)?.state === state);
    return xs.length && r.chance(0.8) ? r.pick(xs) : ctrId();
  };
  /** `p`: how often a live pod is picked (stops and removes pick them rarely, so pods live a while). */
  const podId = (p = 0.7) => (r.chance(p) && livePods.length ? r.pick(livePods) : anyId());
  const filter = (): Json => ({ id: "", pod_sandbox_id: "", label_selector: {}, state: { state: r.pick(["CONTAINER_RUNNING", "CONTAINER_EXITED"]) } });

  type Gen = { svc: "runtime" | "image"; method: string; base: () => Json };
  const start = { svc: "runtime", method: "StartContainer", base: () => ({ container_id: ctrIn("created") }) } as const;
  const createCtr = { svc: "runtime", method: "CreateContainer", base: validCtr } as const;
  const execGen: Gen = {
    svc: "runtime",
    method: "ExecSync",
    base: () => ({ container_id: ctrIn("running"), cmd: r.pick([["true"], ["echo", unicode()], ["sh", "-c", "exit 3"], ["nosuchbinary"], ["sleep", "5"]]), timeout: r.int(0, 2) }),
  };
  const gens: Gen[] = [
    execGen,
    { svc: "runtime", method: "RunPodSandbox", base: validPod },
    createCtr,
    createCtr,
    createCtr,
    start,
    start,
    { svc: "runtime", method: "StopContainer", base: () => ({ container_id: ctrId(), timeout: r.int(0, 2) }) },
    { svc: "runtime", method: "RemoveContainer", base: () => ({ container_id: ctrId() }) },
    { svc: "runtime", method: "StopPodSandbox", base: () => ({ pod_sandbox_id: podId(0.1) }) },
    { svc: "runtime", method: "RemovePodSandbox", base: () => ({ pod_sandbox_id: podId(0.1) }) },
    { svc: "runtime", method: "PodSandboxStatus", base: () => ({ pod_sandbox_id: podId(), verbose: r.chance(0.5) }) },
    { svc: "runtime", method: "ContainerStatus", base: () => ({ container_id: ctrId(), verbose: r.chance(0.5) }) },
    { svc: "runtime", method: "ListContainers", base: () => (r.chance(0.5) ? {} : { filter: filter() }) },
    { svc: "runtime", method: "ListPodSandbox", base: () => (r.chance(0.5) ? {} : { filter: { id: "", label_selector: { app: "fa" }, state: { state: "SANDBOX_READY" } } }) },
    {
      svc: "runtime",
      method: "ExecSync",
      base: () => ({ container_id: ctrId(), cmd: r.pick([["true"], ["echo", unicode()], ["sh", "-c", "exit 3"], ["nosuchbinary"], ["sleep", "5"]]), timeout: r.int(0, 2) }),
    },
    { svc: "runtime", method: "ReopenContainerLog", base: () => ({ container_id: ctrIn("running") }) },
    { svc: "image", method: "ImageStatus", base: () => ({ image: { image: r.pick(["busybox", "docker.io/library/busybox:latest", "pause", rstr()]) }, verbose: r.chance(0.5) }) },
    { svc: "image", method: "ListImages", base: () => (r.chance(0.5) ? {} : { filter: { image: { image: rstr() } } }) },
  ];

  /** Forces a RunPodSandbox to be refused when the pod budget is used up. */
  const poisonPod = (req: Json): Json => {
    const q = { ...(req as Record<string, Json>) };
    switch (r.int(0, 2)) {
      case 0:
        return { ...q, runtime_handler: `nosuch-${hex(4)}` };
      case 1:
        return {};
      default:
        return { config: { ...((q.config as Record<string, Json>) ?? {}), metadata: { name: "", namespace: "x" } } };
    }
  };

  // ---- what each RPC may answer ----
  type Req = Record<string, Json>;
  /** An int64 field as the server reads it: absent is 0. */
  const int64 = (v: Json): bigint => {
    if (typeof v !== "number" && typeof v !== "string") return 0n;
    try {
      return BigInt(v);
    } catch {
      return 0n; // not an integer: the server refuses it (InvalidArgument), never waits on it
    }
  };
  /** A timeout (seconds) whose wait can reach past the client's deadline (leaving 2 s for the rest). */
  const outlastsDeadline = (seconds: bigint) => seconds * 1000n >= BigInt(CALL_DEADLINE_MS - 2000);
  /**
   * Per RPC: the codes it may end with, and when (judged from the request) DeadlineExceeded is
   * legitimate. Every fuzzed RPC is implemented (src/cri/runtime-rpcs.ts, image-service.ts), so
   * UNIMPLEMENTED is never expected. The Stop and Remove RPCs are idempotent (unknown ids succeed,
   * CRI), so they never answer NotFound; the List RPCs only filter; ImageStatus of a missing image
   * is OK with no image (CRI), not NotFound.
   */
  const EXPECT: Record<string, { codes: grpc.status[]; long?: (req: Req) => boolean }> = {
    RunPodSandbox: { codes: [...BAD_REQUEST, S.NOT_FOUND, S.ALREADY_EXISTS, S.FAILED_PRECONDITION] },
    CreateContainer: { codes: [...BAD_REQUEST, S.NOT_FOUND, S.ALREADY_EXISTS, S.FAILED_PRECONDITION] },
    // An executable name longer than a path is refused at CreateContainer (it made runc stall).
    StartContainer: { codes: [...BAD_REQUEST, S.NOT_FOUND, S.FAILED_PRECONDITION] },
    // Stop signal, the request's grace period, then SIGKILL: `sleep 3600` as PID 1 ignores SIGTERM.
    StopContainer: { codes: [...BAD_REQUEST, S.FAILED_PRECONDITION], long: (req) => outlastsDeadline(int64(req.timeout)) },
    RemoveContainer: { codes: [...BAD_REQUEST, S.FAILED_PRECONDITION] },
    StopPodSandbox: { codes: [...BAD_REQUEST, S.FAILED_PRECONDITION] },
    RemovePodSandbox: { codes: [...BAD_REQUEST, S.FAILED_PRECONDITION] },
    PodSandboxStatus: { codes: [...BAD_REQUEST, S.NOT_FOUND] },
    ContainerStatus: { codes: [...BAD_REQUEST, S.NOT_FOUND] },
    ListContainers: { codes: BAD_REQUEST },
    ListPodSandbox: { codes: BAD_REQUEST },
    // Runs until the command ends or the request's timeout (0: none) kills it; only `sleep` can
    // run for seconds.
    ExecSync: {
      codes: [...BAD_REQUEST, S.NOT_FOUND, S.FAILED_PRECONDITION],
      long: (req) => {
        const cmd = Array.isArray(req.cmd) ? req.cmd : [];
        const t = int64(req.timeout);
        return cmd[0] === "sleep" && (t === 0n || outlastsDeadline(t));
      },
    },
    ReopenContainerLog: { codes: [...BAD_REQUEST, S.NOT_FOUND, S.FAILED_PRECONDITION] },
    ImageStatus: { codes: BAD_REQUEST },
    ListImages: { codes: BAD_REQUEST },
  };
  /** Whether `code` is an answer `method` may give to `req`. */
  const expected = (method: string, req: Json, code: grpc.status): boolean => {
    const e = EXPECT[method];
    assert.ok(e, `no expectations for ${method}`);
    if (code === S.OK || e.codes.includes(code)) return true;
    return code === S.DEADLINE_EXCEEDED && e.long !== undefined && e.long((req ?? {}) as Req);
  };

  const failures: string[] = [];
  const codes: Record<string, number> = {};
  const send = (svc: "runtime" | "image", method: string, req: Json): Promise<{ code: grpc.status; details: string; res?: Reply }> =>
    new Promise((resolve) => {
      const client = svc === "runtime" ? runtime : image;
      const deadline = new Date(Date.now() + CALL_DEADLINE_MS);
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      (client as any)[method](req, new grpc.Metadata(), { deadline }, (err: grpc.ServiceError | null, res: Reply) =>
        resolve(err ? { code: err.code, details: detailsOf(err) } : { code: S.OK, details: "", res }),
      );
    });

  const removePod = async (id: string) => {
    const res = await send("runtime", "RemovePodSandbox", { pod_sandbox_id: id });
    assert.equal(res.code, S.OK, `RemovePodSandbox ${id}: ${res.details}`);
    livePods.splice(livePods.indexOf(id), 1);
    for (const c of [...liveCtrs]) if (!d.cri.ctrs.docs.find(c)) liveCtrs.splice(liveCtrs.indexOf(c), 1);
  };

  const started = Date.now();
  for (let i = 0; i < CALLS; i++) {
    const g = r.pick(gens);
    let req = g.base();
    if (r.chance(0.5)) req = mutateN(req);
    // The pod budget is spread over the run so that later calls still find pods to work in.
    const podBudget = Math.ceil(((i + 1) / CALLS) * MAX_PODS);
    if (g.method === "RunPodSandbox" && (podsMade >= podBudget || livePods.length >= MAX_LIVE_PODS)) req = poisonPod(req);
    if (g.method === "CreateContainer" && liveCtrs.length >= MAX_LIVE_CONTAINERS) req = { ...(req as object), pod_sandbox_id: "" };
    const res = await send(g.svc, g.method, req);
    const name = grpc.status[res.code] ?? String(res.code);
    codes[`${g.method} ${name}`] = (codes[`${g.method} ${name}`] ?? 0) + 1;
    if (res.code === S.UNAVAILABLE) assert.fail(`daemon unavailable after call #${i} ${g.method} ${show(req)}: ${res.details}`);
    if (!expected(g.method, req, res.code)) failures.push(`#${i} ${g.method} → ${name}: ${res.details.slice(0, 500)}\n    request: ${show(req).slice(0, 2000)}`);
    if (res.code !== S.OK) continue;
    if (g.method === "RunPodSandbox") {
      const id = res.res!.pod_sandbox_id as string;
      podsMade++;
      livePods.push(id);
      seenIds.push(id);
      noteShims(env, d);
      while (livePods.length > MAX_LIVE_PODS) await removePod(livePods[0]!);
    } else if (g.method === "CreateContainer") {
      const id = res.res!.container_id as string;
      liveCtrs.push(id);
      seenIds.push(id);
    } else if (g.method === "StartContainer") {
      noteShims(env, d);
    } else if (g.method === "RemoveContainer" || g.method === "RemovePodSandbox") {
      for (const id of [...livePods]) if (!d.cri.pods.docs.find(id)) livePods.splice(livePods.indexOf(id), 1);
      for (const id of [...liveCtrs]) if (!d.cri.ctrs.docs.find(id)) liveCtrs.splice(liveCtrs.indexOf(id), 1);
    }
  }
  console.log(`# cri-fuzz: ${CALLS} calls in ${Date.now() - started} ms, ${podsMade} pods run`);
  console.log(`# cri-fuzz codes: ${JSON.stringify(codes)}`);
  if (failures.length) console.log(`# cri-fuzz unexpected codes (seed ${seed}):\n${failures.join("\n")}`);

  // The daemon still answers.
  assert.equal((await send("runtime", "Version", {})).code, S.OK);
  const st = await send("runtime", "Status", {});
  assert.equal(st.code, S.OK, st.details);

  // Remove everything through the API, then check nothing is left.
  const all = await send("runtime", "ListPodSandbox", {});
  for (const p of all.res!.items as { id: string }[]) {
    const res = await send("runtime", "RemovePodSandbox", { pod_sandbox_id: p.id });
    assert.equal(res.code, S.OK, `RemovePodSandbox ${p.id}: ${res.details}`);
  }
  assert.deepEqual((await send("runtime", "ListPodSandbox", {})).res!.items, []);
  assert.deepEqual((await send("runtime", "ListContainers", {})).res!.containers, []);
  assert.ok(await d.cri.monitor.queue.drain(15_000), "the daemon finished the teardown");
  assert.deepEqual(d.meta.shims.list(), [], "no shims left");
  assert.deepEqual((await listNetns()).filter((n) => n.startsWith(`${NETNS_PREFIX}${env.cfg.namespace}-`)), [], "no netns left");
  assert.deepEqual((await d.snapshotter.list()).filter((s) => s.kind !== "committed"), [], "no active snapshots left");
  assert.deepEqual(failures, [], `calls ended with unexpected codes (seed ${seed})`);
});
