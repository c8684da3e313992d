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

