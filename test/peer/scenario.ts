/**
 * A CRI lifecycle scenario driven by the independent grpc-js client, recording every call's
 * response or error in order, so two runtimes (skiff and the peer containerd) can be compared
 * after `normalize`. The scenario never asserts: failures are part of the transcript. Whatever it
 * creates it stops and removes in a `finally` (not recorded), so a half-run leaves nothing behind.
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type * as grpc from "@grpc/grpc-js";
import { call, type Reply } from "../integration/cri-client.js";

export interface TranscriptEntry {
  step: string;
  response?: object;
  error?: { code: number; details: string };
  /** Wall-clock time of the call (dropped by `normalize`). */
  elapsedMs?: number;
}
export type Transcript = TranscriptEntry[];

export interface ScenarioClients {
  runtime: grpc.Client;
  image: grpc.Client;
}

export interface LifecycleOptions {
  /** The pod's log_directory (must exist; container logs go to `<logDir>/<name>.log`). */
  logDir: string;
  /** Image the containers run (busybox: needs sh, echo, sleep). */
  image: string;
  /** An image reference that is certainly absent (default docker.io/library/skiff-missing:none). */
  missingImage?: string;
  /** Suffix making pod names and uids unique on a shared runtime (default random). */
  tag?: string;
  /** Upper bound for each poll (default 20 s). */
  pollTimeoutMs?: number;
}

/** What kubelet asks for by default: each container its own pid namespace (so `sleep` is pid 1). */
const NAMESPACES = { network: "POD", pid: "CONTAINER", ipc: "POD" };
const UNKNOWN_ID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

function isServiceError(err: unknown): err is grpc.ServiceError {
  return typeof err === "object" && err !== null && typeof (err as grpc.ServiceError).code === "number";
}

/** Runs the scenario; see the file comment. */
export async function lifecycleScenario(clients: ScenarioClients, opts: LifecycleOptions): Promise<Transcript> {
  const t: Transcript = [];
  const tag = opts.tag ?? randomBytes(4).toString("hex");
  const pollMs = opts.pollTimeoutMs ?? 20_000;
  const { runtime, image } = clients;
  const pods = new Set<string>();

  const rec = async (step: string, client: grpc.Client, method: string, req: object): Promise<Reply | undefined> => {
    const start = performance.now();
    try {
      const res = await call(client, method, req);
      t.push({ step, response: res, elapsedMs: Math.round(performance.now() - start) });
      return res;
    } catch (err) {
      if (!isServiceError(err)) throw err;
      t.push({ step, error: { code: err.code, details: err.details }, elapsedMs: Math.round(performance.now() - start) });
      return undefined;
    }
  };
  /** Polls ContainerStatus until `state`, recording only the last answer. */
  const waitState = async (step: string, id: string, state: string): Promise<Reply | undefined> => {
    const deadline = Date.now() + pollMs;
    const start = performance.now();
    for (;;) {
      try {
        const res = await call(runtime, "ContainerStatus", { container_id: id });
        if (res.status?.state === state || Date.now() >= deadline) {
          t.push({ step, response: res, elapsedMs: Math.round(performance.now() - start) });
          return res;
        }
      } catch (err) {
        if (!isServiceError(err)) throw err;
        t.push({ step, error: { code: err.code, details: err.details } });
        return undefined;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const podConfig = (name: string, uid: string) => ({
    metadata: { name, namespace: "skiff-peer", uid, attempt: 0 },
    hostname: name,
    log_directory: opts.logDir,
    labels: { app: "skiff-peer", scenario: "lifecycle", pod: name },
    annotations: { "skiff.test/tag": "scenario" },
    linux: { security_context: { namespace_options: NAMESPACES } },
  });
  const containerConfig = (name: string, command: string[]) => ({
    metadata: { name, attempt: 0 },
    image: { image: opts.image },
    command,
    log_path: `${name}.log`,
    labels: { container: name },
    linux: { security_context: { namespace_options: NAMESPACES } },
  });

  t.push({ step: "Scenario", response: { tag } });
  try {
    await rec("Version", runtime, "Version", {});
    await rec("Status", runtime, "Status", {});
    await rec("ImageStatus(image)", image, "ImageStatus", { image: { image: opts.image } });
    await rec("ImageStatus(missing)", image, "ImageStatus", { image: { image: opts.missingImage ?? "docker.io/library/skiff-missing:none" } });
    await rec("ListImages", image, "ListImages", {});

    const podCfg = podConfig(`lifecycle-${tag}`, `uid-lifecycle-${tag}`);
    const run = await rec("RunPodSandbox", runtime, "RunPodSandbox", { config: podCfg });
    const pod = run?.pod_sandbox_id as string | undefined;
    if (!pod) return t;
    pods.add(pod);
    await rec("PodSandboxStatus", runtime, "PodSandboxStatus", { pod_sandbox_id: pod });
    await rec("ListPodSandbox", runtime, "ListPodSandbox", {});
    await rec("ListPodSandbox(label)", runtime, "ListPodSandbox", { filter: { label_selector: { pod: podCfg.metadata.name } } });
    await rec("ListPodSandbox(label,none)", runtime, "ListPodSandbox", { filter: { label_selector: { pod: "no-such-pod" } } });

    // A container that prints and exits 3.
    const created = await rec("CreateContainer(hello)", runtime, "CreateContainer", {
      pod_sandbox_id: pod,
      config: containerConfig("hello", ["sh", "-c", "echo hello; exit 3"]),
      sandbox_config: podCfg,
    });
    const hello = created?.container_id as string | undefined;
    if (hello) {
      await rec("ContainerStatus(hello,created)", runtime, "ContainerStatus", { container_id: hello });
      await rec("StartContainer(hello)", runtime, "StartContainer", { container_id: hello });
      await waitState("ContainerStatus(hello,exited)", hello, "CONTAINER_EXITED");
      t.push({ step: "ReadLog(hello)", response: { lines: await readLog(path.join(opts.logDir, "hello.log"), pollMs) } });
      await rec("ListContainers(state=EXITED)", runtime, "ListContainers", { filter: { pod_sandbox_id: pod, state: { state: "CONTAINER_EXITED" } } });
      await rec("ListContainers(state=RUNNING)", runtime, "ListContainers", { filter: { pod_sandbox_id: pod, state: { state: "CONTAINER_RUNNING" } } });
      await rec("ExecSync(exited)", runtime, "ExecSync", { container_id: hello, cmd: ["echo", "hi"], timeout: 5 });
    }

    // A long-running container for exec and stop.
    const created2 = await rec("CreateContainer(sleeper)", runtime, "CreateContainer", {
      pod_sandbox_id: pod,
      config: containerConfig("sleeper", ["sleep", "3600"]),
      sandbox_config: podCfg,
    });
    const sleeper = created2?.container_id as string | undefined;
    if (sleeper) {
      await rec("StartContainer(sleeper)", runtime, "StartContainer", { container_id: sleeper });
      await waitState("ContainerStatus(sleeper,running)", sleeper, "CONTAINER_RUNNING");
      await rec("ExecSync(echo hi)", runtime, "ExecSync", { container_id: sleeper, cmd: ["echo", "hi"], timeout: 10 });
      await rec("ExecSync(exit 5)", runtime, "ExecSync", { container_id: sleeper, cmd: ["sh", "-c", "echo out; echo err >&2; exit 5"], timeout: 10 });
      await rec("ExecSync(timeout 1, sleep 10)", runtime, "ExecSync", { container_id: sleeper, cmd: ["sleep", "10"], timeout: 1 });
      await rec("ListContainers(state=RUNNING)#2", runtime, "ListContainers", { filter: { pod_sandbox_id: pod, state: { state: "CONTAINER_RUNNING" } } });
      await rec("StopContainer(sleeper,2)", runtime, "StopContainer", { container_id: sleeper, timeout: 2 });
      await rec("ContainerStatus(sleeper,stopped)", runtime, "ContainerStatus", { container_id: sleeper });
    }
    await rec("StopContainer(unknown)", runtime, "StopContainer", { container_id: UNKNOWN_ID, timeout: 1 });
    await rec("RemoveContainer(unknown)", runtime, "RemoveContainer", { container_id: UNKNOWN_ID });
    await rec("ListContainers", runtime, "ListContainers", {});

    await rec("StopPodSandbox", runtime, "StopPodSandbox", { pod_sandbox_id: pod });
    await rec("PodSandboxStatus(stopped)", runtime, "PodSandboxStatus", { pod_sandbox_id: pod });
    await rec("StopPodSandbox(again)", runtime, "StopPodSandbox", { pod_sandbox_id: pod });
    await rec("ListContainers(after stop)", runtime, "ListContainers", { filter: { pod_sandbox_id: pod } });
    await rec("RemovePodSandbox", runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
    await rec("PodSandboxStatus(removed)", runtime, "PodSandboxStatus", { pod_sandbox_id: pod });
    await rec("ListContainers(after remove)", runtime, "ListContainers", {});
    await rec("ListPodSandbox(after remove)", runtime, "ListPodSandbox", {});
    await rec("RemovePodSandbox(again)", runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
    await rec("StopPodSandbox(removed)", runtime, "StopPodSandbox", { pod_sandbox_id: pod });

    // Removing a pod that is still ready.
    const cfg2 = podConfig(`ready-${tag}`, `uid-ready-${tag}`);
    const run2 = await rec("RunPodSandbox(ready)", runtime, "RunPodSandbox", { config: cfg2 });
    const pod2 = run2?.pod_sandbox_id as string | undefined;
    if (pod2) {
      pods.add(pod2);
      await rec("RemovePodSandbox(ready)", runtime, "RemovePodSandbox", { pod_sandbox_id: pod2 });
      await rec("PodSandboxStatus(ready, after remove)", runtime, "PodSandboxStatus", { pod_sandbox_id: pod2 });
      await rec("StopPodSandbox(ready)", runtime, "StopPodSandbox", { pod_sandbox_id: pod2 });
      await rec("RemovePodSandbox(ready, stopped)", runtime, "RemovePodSandbox", { pod_sandbox_id: pod2 });
    }
    return t;
  } finally {
    for (const id of pods) {
      await call(runtime, "StopPodSandbox", { pod_sandbox_id: id }).catch(() => {});
      await call(runtime, "RemovePodSandbox", { pod_sandbox_id: id }).catch(() => {});
    }
  }
}

/** The log's lines once it ends with a complete ("F") line, or what is there after `timeoutMs`. */
async function readLog(file: string, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(file, "utf8").catch(() => "");
    const lines = text.split("\n").filter((l) => l !== "");
    if (lines.some((l) => / (stdout|stderr) F /.test(l)) || Date.now() >= deadline) return lines;
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---- normalization ----

const ID_KEYS = new Set(["id", "pod_sandbox_id", "container_id", "sandbox_id"]);
const HEX64 = /\b[0-9a-f]{64}\b/g;
const DIGEST = /sha256:[0-9a-f]{64}/g;
const LIST_KEYS = new Set(["items", "containers", "images", "conditions", "repo_tags", "repo_digests"]);

/**
 * A transcript fit for comparison between runtimes: ids become `<id1>`, `<id2>`… in order of
 * first appearance (so relations survive), digests and image ids `<digest>`, non-zero timestamps
 * (`*_at`, log-line prefixes) `<ts>`, non-zero pids `<pid>`, IP addresses a boolean (has one),
 * paths under the OS temp dir `<tmp>/…`, the scenario's random tag `<tag>`, object keys sorted,
 * lists sorted, `elapsedMs` dropped.
 */
export function normalize(t: Transcript): Transcript {
  const ids = new Map<string, string>();
  const idFor = (v: string) => {
    let n = ids.get(v);
    if (!n) ids.set(v, (n = `<id${ids.size + 1}>`));
    return n;
  };
  const tag = (t.find((e) => e.step === "Scenario")?.response as { tag?: string } | undefined)?.tag;
  const tmp = tmpdir().replace(/\/+$/, "");
  const tmpRe = new RegExp(`${tmp.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/[^/\\s"']+`, "g");
  const str = (s: string): string => {
    const out = s.replace(DIGEST, "<digest>").replace(HEX64, (h) => idFor(h)).replace(tmpRe, "<tmp>");
    return tag ? out.split(tag).join("<tag>") : out;
  };
  const logLine = (s: string): string => s.replace(/^\S+ (stdout|stderr) ([FP]) /, "<ts> $1 $2 ");

  const walk = (v: unknown, key: string | undefined): unknown => {
    if (v instanceof Uint8Array) return str(Buffer.from(v).toString("utf8"));
    if (typeof v === "string") {
      if (key && ID_KEYS.has(key) && v !== "") return v.startsWith("sha256:") ? "<digest>" : v.includes(" ") ? str(v) : idFor(v);
      if (key === "ip") return v !== "";
      if (key && key.endsWith("_at")) return v === "0" || v === "" ? v : "<ts>";
      if (key === "pid" && /^\d+$/.test(v)) return v === "0" ? v : "<pid>";
      return str(v);
    }
    if (typeof v === "number") {
      if (key && key.endsWith("_at")) return v === 0 ? v : "<ts>";
      if (key === "pid") return v === 0 ? v : "<pid>";
      return v;
    }
    if (Array.isArray(v)) {
      const out = v.map((x) => walk(x, key === "lines" ? "line" : undefined));
      if (key === "lines") return out.map((l) => (typeof l === "string" ? logLine(l) : l));
      if (key === "additional_ips") return out.length;
      if (key && LIST_KEYS.has(key)) return out.sort((a, b) => cmp(JSON.stringify(a), JSON.stringify(b)));
      return out;
    }
    if (v && typeof v === "object") {
      const o: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        if (k === "elapsedMs") continue;
        o[k] = walk((v as Record<string, unknown>)[k], k);
      }
      return o;
    }
    return v;
  };
  return t.map((e) => walk(e, undefined) as TranscriptEntry);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
