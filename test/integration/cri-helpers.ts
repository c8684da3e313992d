/** Request builders and polling helpers shared by the CRI integration tests. */
import assert from "node:assert/strict";
import type * as grpc from "@grpc/grpc-js";
import { call } from "./cri-client.js";

export function podConfig(name: string, logDir: string, extra: object = {}) {
  return {
    metadata: { name, namespace: "default", uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    log_directory: logDir,
    labels: { app: name },
    annotations: { note: "test" },
    ...extra,
  };
}

export function ctrConfig(name: string, cmd: string[], extra: object = {}) {
  return {
    metadata: { name, attempt: 0 },
    image: { image: "docker.io/library/busybox:latest" },
    command: cmd,
    log_path: `${name}.log`,
    labels: { c: name },
    ...extra,
  };
}

export async function waitState(runtime: grpc.Client, id: string, state: string, ms = 10_000) {
  const end = Date.now() + ms;
  for (;;) {
    const r = await call(runtime, "ContainerStatus", { container_id: id });
    if (r.status.state === state) return r.status;
    if (Date.now() > end) assert.fail(`container ${id} is ${r.status.state}, want ${state}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}


/**
 * An in-process daemon with the built-in images in a fresh env, a grpc-js CRI client and a log
 * directory; the client is closed and the env cleaned up (asserting nothing is left) after `t`.
 */
export async function criFixture(t: { after: (fn: () => Promise<void>) => void }) {
  const { makeEnv, startDaemon, cleanupEnv } = await import("./harness.js");
  const { criClients } = await import("./cri-client.js");
  const { mkdir } = await import("node:fs/promises");
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  const d = await startDaemon(env);
  const { runtime, image, close } = criClients(env.cfg.socket);
  t.after(async () => {
    close();
    assert.deepEqual(await cleanupEnv(env, d), []);
  });
  const logDir = `${env.dir}/logs`;
  await mkdir(logDir, { recursive: true });
  return { env, d, runtime, image, logDir };
}

/** Runs a pod; `start` creates and starts a busybox container in it and waits until it runs. */
export async function runPod(runtime: grpc.Client, name: string, logDir: string, extra: object = {}) {
  const podCfg = podConfig(name, logDir, extra);
  const pod = (await call(runtime, "RunPodSandbox", { config: podCfg })).pod_sandbox_id as string;
  const start = async (ctr: string, cmd: string[], ctrExtra: object = {}) => {
    const id = (await call(runtime, "CreateContainer", { pod_sandbox_id: pod, config: ctrConfig(ctr, cmd, ctrExtra), sandbox_config: podCfg })).container_id as string;
    await call(runtime, "StartContainer", { container_id: id });
    await waitState(runtime, id, "CONTAINER_RUNNING");
    return id;
  };
  return { pod, podCfg, start };
}
