/** A memory-limited container that allocates past its limit is reported OOMKilled with 137. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import * as path from "node:path";
import { makeEnv, cleanupEnv, startDaemon } from "./harness.js";
import { call, criClients } from "./cri-client.js";
import { podConfig, ctrConfig, waitState } from "./cri-helpers.js";

test("OOM kill: reason OOMKilled, exit code 137", { timeout: 60_000 }, async (t) => {
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  const d = await startDaemon(env);
  const { runtime, close } = criClients(env.cfg.socket);
  t.after(async () => {
    close();
    assert.deepEqual(await cleanupEnv(env, d), []);
  });
  const logDir = path.join(env.dir, "logs");
  await mkdir(logDir);
  const pod = (await call(runtime, "RunPodSandbox", { config: podConfig("oom", logDir) })).pod_sandbox_id;
  const c = (
    await call(runtime, "CreateContainer", {
      pod_sandbox_id: pod,
      config: ctrConfig("oom", ["sh", "-c", "x=aaaaaaaa; while true; do x=$x$x; done"], {
        linux: { resources: { memory_limit_in_bytes: 32 * 1024 * 1024 } },
      }),
    })
  ).container_id;
  await call(runtime, "StartContainer", { container_id: c });
  const st = await waitState(runtime, c, "CONTAINER_EXITED", 30_000);
  assert.equal(st.reason, "OOMKilled");
  assert.equal(st.exit_code, 137);
  await call(runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
});
