/**
 * Container options observed from inside running containers: user by uid and by name from the
 * image's /etc/passwd with groups, env (over the image's) and working dir, command and args as
 * containerd combines them with the image's, bind mounts (readonly, read-write, private and
 * rslave propagation of a mount made on the host later), readonly rootfs, no_new_privs, and the
 * pod's PID namespace shared or not.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { makeEnv, cleanupEnv, startDaemon } from "./harness.js";
import { call, criClients } from "./cri-client.js";
import { podConfig, ctrConfig, waitState } from "./cri-helpers.js";
import { run, runChecked } from "../../src/util/exec.js";

test("container options seen from inside", { timeout: 120_000 }, async (t) => {
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  const d = await startDaemon(env);
  const { runtime, close } = criClients(env.cfg.socket);
  const shared = path.join(env.dir, "shared");
  t.after(async () => {
    close();
    await run("umount", ["-R", shared]);
    assert.deepEqual(await cleanupEnv(env, d), []);
  });
  const logDir = path.join(env.dir, "logs");
  await mkdir(logDir);
  const ro = path.join(env.dir, "ro");
  const rw = path.join(env.dir, "rw");
  await mkdir(ro);
  await mkdir(rw);
  await writeFile(path.join(ro, "f"), "from-host\n");
  // World-writable, so only the read-only mount (not the file mode) can refuse uid 1000's write.
  await runChecked("chmod", ["777", ro, rw]);
  // A shared mount point, so a mount made under it later propagates (rslave) into the container.
  await mkdir(shared);
  await runChecked("mount", ["-t", "tmpfs", "tmpfs", shared]);
  await runChecked("mount", ["--make-shared", shared]);

  const cfg = podConfig("spec", logDir);
  const pod = (await call(runtime, "RunPodSandbox", { config: cfg })).pod_sandbox_id;
  const start = async (name: string, extra: object) => {
    const id = (await call(runtime, "CreateContainer", { pod_sandbox_id: pod, config: ctrConfig(name, ["sleep", "3600"], extra), sandbox_config: cfg })).container_id;
    await call(runtime, "StartContainer", { container_id: id });
    await waitState(runtime, id, "CONTAINER_RUNNING");
    return id;
  };
  const sh = async (id: string, script: string) => {
    const r = await call(runtime, "ExecSync", { container_id: id, cmd: ["sh", "-c", script], timeout: 10 });
    return { out: r.stdout.toString(), err: r.stderr.toString(), code: r.exit_code as number };
  };

  const a = await start("a", {
    envs: [
      { key: "GREETING", value: "hi" },
      { key: "PATH", value: "/bin:/custom" }, // the image sets PATH too: the container's wins
    ],
    working_dir: "/tmp",
    mounts: [
      { container_path: "/ro", host_path: ro, readonly: true },
      { container_path: "/rw", host_path: rw },
      { container_path: "/shared", host_path: shared, propagation: "PROPAGATION_HOST_TO_CONTAINER" },
    ],
    linux: { security_context: { run_as_user: { value: 1000 }, run_as_group: { value: 2000 }, supplemental_groups: [3000], no_new_privs: true } },
  });
  assert.equal((await sh(a, "id -u; id -g; id -G")).out, "1000\n2000\n2000 3000\n");
  assert.equal((await sh(a, "echo $GREETING; echo $PATH; pwd")).out, "hi\n/bin:/custom\n/tmp\n");
  // The main process too (the pod shares its PID namespace: find sleep by name).
  assert.match((await sh(a, "tr '\\0' '\\n' < /proc/$(pidof sleep)/environ")).out, /^PATH=\/bin:\/custom$/m);
  assert.equal((await sh(a, "cat /ro/f")).out, "from-host\n");
  const roWrite = await sh(a, "echo x > /ro/g");
  assert.notEqual(roWrite.code, 0, "readonly mount refuses writes");
  assert.match(roWrite.err, /Read-only file system/);
  assert.equal((await sh(a, "echo written > /rw/g")).code, 0);
  assert.equal(await readFile(path.join(rw, "g"), "utf8"), "written\n");
  assert.match((await sh(a, "grep NoNewPrivs /proc/self/status")).out, /NoNewPrivs:\s+1/);
  // rslave: a mount made on the host after the container started shows inside; with private
  // propagation it does not.
  const p = await start("p", { mounts: [{ container_path: "/shared", host_path: shared, propagation: "PROPAGATION_PRIVATE" }] });
  await mkdir(path.join(shared, "late"));
  await runChecked("mount", ["-t", "tmpfs", "tmpfs", path.join(shared, "late")]);
  await writeFile(path.join(shared, "late", "marker"), "propagated\n");
  assert.equal((await sh(a, "cat /shared/late/marker")).out, "propagated\n");
  assert.deepEqual(await sh(p, "ls -A /shared/late"), { out: "", err: "", code: 0 }, "private: the later mount stays on the host");

  const b = await start("b", {
    linux: { security_context: { run_as_username: "nobody", readonly_rootfs: true, namespace_options: { pid: "POD" } } },
  });
  assert.equal((await sh(b, "id -u; id -g")).out, "65534\n65534\n", "user by name from the image's /etc/passwd");
  const rootWrite = await sh(b, "touch /newfile");
  assert.notEqual(rootWrite.code, 0, "readonly rootfs refuses writes");
  assert.match(rootWrite.err, /Read-only file system/);
  assert.equal((await sh(b, "touch /dev/shm/x")).code, 0, "the pod's /dev/shm stays writable");
  assert.match((await sh(b, "grep NoNewPrivs /proc/self/status")).out, /NoNewPrivs:\s+0/);
  assert.match((await sh(b, "ps -o pid,args")).out, /\/pause/, "the pod's PID namespace shows the pause process");
  const c = await start("c", { linux: { security_context: { namespace_options: { pid: "CONTAINER" } } } });
  const ps = (await sh(c, "ps -o pid,args")).out;
  assert.doesNotMatch(ps, /\/pause/);
  assert.match(ps, /^\s*1 sleep 3600$/m, "its own PID namespace: sleep is PID 1");

  // Command and args as containerd combines them with the image (Cmd ["sh"], no Entrypoint):
  // command replaces the entrypoint and drops the image's Cmd, args replace Cmd.
  const output = async (name: string, extra: object) => {
    const id = (await call(runtime, "CreateContainer", { pod_sandbox_id: pod, config: ctrConfig(name, [], extra), sandbox_config: cfg })).container_id;
    await call(runtime, "StartContainer", { container_id: id });
    const st = await waitState(runtime, id, "CONTAINER_EXITED");
    let log = "";
    for (let i = 0; i < 20; i++) {
      log = await readFile(st.log_path, "utf8").catch(() => "");
      if (log.endsWith("\n")) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const lines = log.split("\n").filter(Boolean).map((l) => l.replace(/^\S+ stdout F /, ""));
    return { code: st.exit_code as number, lines };
  };
  assert.deepEqual(await output("cmd-args", { command: ["echo", "cmd"], args: ["a", "b"] }), { code: 0, lines: ["cmd a b"] });
  assert.deepEqual(await output("cmd-only", { command: ["echo", "only"] }), { code: 0, lines: ["only"] }, "no image Cmd appended");
  assert.deepEqual(await output("args-only", { args: ["echo", "args"] }), { code: 0, lines: ["args"] });
  // Neither: the image's Cmd, `sh`, reads its empty stdin and exits 0.
  assert.deepEqual(await output("neither", {}), { code: 0, lines: [] });

  await call(runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
});
