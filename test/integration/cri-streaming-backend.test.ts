/**
 * The streaming backend (exec, attach, port-forward) driven directly on a real daemon's pods and
 * containers, with in-memory streams standing in for the streaming server's SPDY/WebSocket
 * channels: separate stdout/stderr and exit codes, a tty with stdin and resizes, several
 * attachers and detaching, stdin_once, port-forward into the pod's netns (20 connections at
 * once), and a client that leaves mid-exec leaving no process, exec record or FIFO behind.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import * as path from "node:path";
import { Duplex, PassThrough } from "node:stream";
import { noteShims } from "./harness.js";
import * as grpc from "@grpc/grpc-js";
import { call, rejectsWith } from "./cri-client.js";
import { podConfig, ctrConfig, waitState, criFixture, runPod } from "./cri-helpers.js";
import { isCanceled, isFailedPrecondition, isInvalidArgument, isNotFound, isUnavailable } from "../../src/errors.js";
import type { TerminalSize } from "../../src/streaming/types.js";

/** A client output stream collecting what the backend writes. */
function sink() {
  const s = new PassThrough();
  let text = "";
  s.on("data", (b: Buffer) => (text += b.toString()));
  const ended = new Promise<void>((resolve) => s.once("end", () => resolve()));
  return { s, text: () => text, ended };
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Live processes whose command line contains `needle` (our own test processes only). */
async function processesWith(needle: string): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const cmd = await readFile(`/proc/${name}/cmdline`, "utf8").catch(() => "");
    if (cmd.replaceAll("\0", " ").includes(needle)) found.push(Number(name));
  }
  return found;
}

test("streaming backend: exec, tty, resize, attach, stdin_once, port-forward, abort", { timeout: 180_000 }, async (t) => {
  const { env, d, runtime, logDir } = await criFixture(t);
  const backend = d.streamingBackend!;
  assert.ok(backend, "the daemon builds the streaming backend with the CRI component");
  const { pod, podCfg, start: startCtr } = await runPod(runtime, "strm", logDir);
  noteShims(env, d);
  const sleeper = await startCtr("sleeper", ["sleep", "3600"]);
  const never = () => new AbortController().signal;

  await t.test("exec: separate stdout and stderr, the exit code", async () => {
    const out = sink();
    const err = sink();
    const r = await backend.exec(sleeper, ["sh", "-c", "echo out; echo err >&2; exit 7"], { stdout: out.s, stderr: err.s, tty: false }, never());
    assert.equal(r.exitCode, 7);
    await Promise.all([out.ended, err.ended]);
    assert.equal(out.text(), "out\n");
    assert.equal(err.text(), "err\n");
  });

  await t.test("exec: stdin without a tty ends with the client's input", async () => {
    const stdin = new PassThrough();
    const out = sink();
    const run = backend.exec(sleeper, ["sh", "-c", "cat; echo cat-done"], { stdin, stdout: out.s, tty: false }, never());
    stdin.write("line one\n");
    stdin.end("line two\n");
    assert.equal((await run).exitCode, 0);
    assert.equal(out.text(), "line one\nline two\ncat-done\n");
  });

  await t.test("exec: tty with stdin (cat echoes through the terminal, ^D ends it)", async () => {
    const stdin = new PassThrough();
    const out = sink();
    const run = backend.exec(sleeper, ["cat"], { stdin, stdout: out.s, tty: true }, never());
    stdin.write("hello tty\r");
    await until("the echo of the input", () => out.text().split("hello tty").length >= 3);
    stdin.write("\x04");
    assert.equal((await run).exitCode, 0);
    // The terminal echoes the line and cat prints it again, both with CRLF.
    assert.match(out.text(), /hello tty\r\n(.|\n)*hello tty\r\n/);
  });

  await t.test("exec: resize changes what `stty size` reports", async () => {
    const stdin = new PassThrough();
    const out = sink();
    const resizes = new PassThrough({ objectMode: true });
    const run = backend.exec(sleeper, ["sh"], { stdin, stdout: out.s, tty: true, resizes: resizes as AsyncIterable<TerminalSize> }, never());
    resizes.write({ width: 100, height: 40 });
    stdin.write("sleep 0.5; stty size\n");
    await until("40 100", () => out.text().includes("40 100"));
    resizes.write({ width: 120, height: 50 });
    stdin.write("sleep 0.5; stty size; exit 3\n");
    const r = await run;
    resizes.end();
    assert.equal(r.exitCode, 3);
    assert.ok(out.text().includes("50 120"), out.text());
  });

  await t.test("attach: two attachers see the output, input reaches the container, detaching leaves it running", async () => {
    const catter = await startCtr("catter", ["cat"], { stdin: true });
    const a = { stdin: new PassThrough(), out: sink(), err: sink(), ac: new AbortController() };
    const b = { out: sink(), ac: new AbortController() };
    const ra = backend.attach(catter, { stdin: a.stdin, stdout: a.out.s, stderr: a.err.s, tty: false }, a.ac.signal);
    const rb = backend.attach(catter, { stdout: b.out.s, tty: false }, b.ac.signal);
    a.stdin.write("ping\n");
    await until("both attachers got the output", () => a.out.text() === "ping\n" && b.out.text() === "ping\n");
    a.ac.abort();
    assert.deepEqual(await ra, {});
    // b is still attached and still gets output written by a third attacher.
    const c = { stdin: new PassThrough(), out: sink() };
    const rc = backend.attach(catter, { stdin: c.stdin, stdout: c.out.s, tty: false }, never());
    // Without stdin_once, the end of c's input ends c's attach (its output too), not the
    // container's stdin.
    c.stdin.end("pong\n");
    assert.deepEqual(await rc, {});
    await c.out.ended;
    await until("b got the second line", () => b.out.text() === "ping\npong\n");
    b.ac.abort();
    assert.deepEqual(await rb, {});
    assert.equal((await call(runtime, "ContainerStatus", { container_id: catter })).status.state, "CONTAINER_RUNNING");
    // The CRI log got the output too.
    await until("the log has both lines", async () => (await readFile(path.join(logDir, "catter.log"), "utf8").catch(() => "")).includes("stdout F pong"));
    // A container still reading its stdin after all detached: one more attacher, one more line.
    const again = sink();
    const ac = new AbortController();
    const stdin = new PassThrough();
    const rd = backend.attach(catter, { stdin, stdout: again.s, tty: false }, ac.signal);
    stdin.write("still here\n");
    await until("the container still echoes", () => again.text() === "still here\n");
    ac.abort();
    await rd;
    // Stdin on a container created without it is refused, naming the container.
    await assert.rejects(backend.attach(sleeper, { stdin: new PassThrough(), stdout: sink().s, tty: false }, never()), (e: Error) => isFailedPrecondition(e) && e.message.includes(sleeper));
  });

  await t.test("attach: stdin_once closes the container's stdin when the first attacher's input ends", async () => {
    const once = await startCtr("once", ["sh", "-c", "cat; echo cat-ended; exit 4"], { stdin: true, stdin_once: true });
    const stdin = new PassThrough();
    const out = sink();
    const r = backend.attach(once, { stdin, stdout: out.s, stderr: sink().s, tty: false }, never());
    stdin.write("x\n");
    await until("the echo", () => out.text() === "x\n");
    stdin.end();
    assert.deepEqual(await r, { exitCode: 4 });
    assert.equal(out.text(), "x\ncat-ended\n");
    await waitState(runtime, once, "CONTAINER_EXITED");
  });

  await t.test("attach: a tty container gets resizes on its console", async () => {
    const tty = await startCtr("ttysh", ["sh"], { stdin: true, tty: true });
    const stdin = new PassThrough();
    const out = sink();
    const resizes = new PassThrough({ objectMode: true });
    const ac = new AbortController();
    const r = backend.attach(tty, { stdin, stdout: out.s, tty: true, resizes: resizes as AsyncIterable<TerminalSize> }, ac.signal);
    resizes.write({ width: 90, height: 30 });
    stdin.write("sleep 0.5; stty size\n");
    await until("30 90", () => out.text().includes("30 90"));
    ac.abort();
    resizes.end();
    assert.deepEqual(await r, {});
  });

  await t.test("port-forward: into the pod's netns, 20 connections at once; nothing listening is Unavailable", async () => {
    await startCtr("web", ["sh", "-c", "mkdir -p /www && echo hello-pf > /www/index.html && exec httpd -f -p 8080 -h /www"]);
    const get = async (port: number) => {
      const send = new PassThrough();
      const recv = sink();
      const conn = Duplex.from({ readable: send, writable: recv.s });
      const done = backend.portForward(pod, port, conn, never());
      send.end("GET / HTTP/1.0\r\nHost: x\r\n\r\n");
      await done;
      return recv.text();
    };
    // httpd may need a moment before it listens.
    await until("httpd to answer", async () => (await get(8080).catch(() => "")).includes("hello-pf"));
    const answers = await Promise.all(Array.from({ length: 20 }, () => get(8080)));
    for (const a of answers) assert.match(a, /^HTTP\/1\.[01] 200 (.|\n|\r)*hello-pf\n$/);
    await assert.rejects(get(8081), (e: Error) => isUnavailable(e) && e.message.includes(pod) && e.message.includes("8081"));
    // Aborting a connection kills its relay process.
    const ac = new AbortController();
    const send = new PassThrough();
    const done = backend.portForward(pod, 8080, Duplex.from({ readable: send, writable: sink().s }), ac.signal);
    const relays = `skiff-portrelay ${d.cri.pods.docs.get(pod).netns!.path} `;
    await until("a relay process", async () => (await processesWith(relays)).length === 1);
    ac.abort();
    await assert.rejects(done, (e: Error) => isCanceled(e));
    await until("no relay process left", async () => (await processesWith(relays)).length === 0);
  });

  await t.test("port-forward: a host-network pod's port is reached on the host's loopback", async () => {
    const hostCfg = podConfig("strm-host", logDir, { linux: { security_context: { namespace_options: { network: "NODE" } } } });
    const hostPod = (await call(runtime, "RunPodSandbox", { config: hostCfg })).pod_sandbox_id as string;
    noteShims(env, d);
    assert.equal(d.cri.pods.docs.get(hostPod).netns, null);
    const port = 20000 + Math.floor(Math.random() * 20000);
    const id = (
      await call(runtime, "CreateContainer", {
        pod_sandbox_id: hostPod,
        config: ctrConfig("hostweb", ["sh", "-c", `mkdir -p /www && echo hello-host > /www/index.html && exec httpd -f -p 127.0.0.1:${port} -h /www`]),
        sandbox_config: hostCfg,
      })
    ).container_id as string;
    await call(runtime, "StartContainer", { container_id: id });
    const get = async () => {
      const send = new PassThrough();
      const recv = sink();
      const done = backend.portForward(hostPod, port, Duplex.from({ readable: send, writable: recv.s }), never());
      send.end("GET / HTTP/1.0\r\n\r\n");
      await done;
      return recv.text();
    };
    await until("httpd on the host network to answer", async () => (await get().catch(() => "")).includes("hello-host"));
    await call(runtime, "StopPodSandbox", { pod_sandbox_id: hostPod });
    await call(runtime, "RemovePodSandbox", { pod_sandbox_id: hostPod });
  });

  await t.test("exec: a client leaving mid-exec leaves no process, exec record or FIFO", async () => {
    const before = (await d.tasks.pids(sleeper)).length;
    const ac = new AbortController();
    const out = sink();
    const run = backend.exec(sleeper, ["sleep", "3601"], { stdin: new PassThrough(), stdout: out.s, tty: false }, ac.signal);
    await until("the exec process", async () => (await d.tasks.pids(sleeper)).length === before + 1);
    ac.abort();
    await assert.rejects(run, (e: Error) => isCanceled(e));
    assert.equal((await d.tasks.pids(sleeper)).length, before);
    assert.deepEqual(await processesWith("sleep 3601"), []);
    assert.deepEqual(d.meta.execs.list(sleeper), [], "no exec record left");
    const ioDir = path.join(env.cfg.state, "cri", "io", sleeper);
    assert.deepEqual((await readdir(ioDir)).filter((f) => f.startsWith("exec-")), []);
  });

  await t.test("refusals: unknown container or pod, exited container, empty cmd", async () => {
    const gone = "f".repeat(64);
    const io = { stdout: sink().s, tty: false };
    await assert.rejects(backend.exec(gone, ["true"], io, never()), (e: Error) => isNotFound(e) && e.message.includes(gone));
    await assert.rejects(backend.attach(gone, io, never()), (e: Error) => isNotFound(e) && e.message.includes(gone));
    await assert.rejects(backend.portForward(gone, 80, new PassThrough(), never()), (e: Error) => isNotFound(e) && e.message.includes(gone));
    await assert.rejects(backend.exec(sleeper, [], io, never()), (e: Error) => isInvalidArgument(e) && e.message.includes(sleeper));
    const done = (await call(runtime, "ListContainers", { filter: { label_selector: { c: "once" } } })).containers[0].id as string;
    await assert.rejects(backend.exec(done, ["true"], io, never()), (e: Error) => isFailedPrecondition(e) && e.message.includes(done));
    await assert.rejects(backend.attach(done, io, never()), (e: Error) => isFailedPrecondition(e) && e.message.includes(done));
  });

  await call(runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  await assert.rejects(backend.portForward(pod, 8080, new PassThrough(), never()), (e: Error) => isFailedPrecondition(e) && e.message.includes(pod));
  await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
  await until("the pod's shim to go", () => d.meta.shims.list().length === 0);
});

test("CRI Exec/Attach/PortForward: URLs on the streaming server's 127.0.0.1 address; bad requests refused with their codes", { timeout: 120_000 }, async (t) => {
  const { env, d, runtime, logDir } = await criFixture(t);
  const { pod, podCfg } = await runPod(runtime, "rpcs", logDir);
  noteShims(env, d);
  const create = async (name: string, extra: object = {}) =>
    (await call(runtime, "CreateContainer", { pod_sandbox_id: pod, config: ctrConfig(name, ["sleep", "3600"], extra), sandbox_config: podCfg })).container_id as string;
  const plain = await create("plain");
  const withStdin = await create("with-stdin", { stdin: true });
  const created = await create("created-only");
  for (const id of [plain, withStdin]) {
    await call(runtime, "StartContainer", { container_id: id });
    await waitState(runtime, id, "CONTAINER_RUNNING");
  }
  const url = /^http:\/\/127\.0\.0\.1:\d+\/\S+$/;
  assert.match((await call(runtime, "Exec", { container_id: plain, cmd: ["ls"], stdout: true, stderr: true })).url, url);
  assert.match((await call(runtime, "Exec", { container_id: plain.slice(0, 8), cmd: ["sh"], stdin: true, stdout: true, tty: true })).url, url);
  assert.match((await call(runtime, "Attach", { container_id: withStdin, stdin: true, stdout: true, stderr: true })).url, url);
  assert.match((await call(runtime, "PortForward", { pod_sandbox_id: pod, port: [8080] })).url, url);
  const a = (await call(runtime, "Exec", { container_id: plain, cmd: ["true"], stdout: true })).url;
  const b = (await call(runtime, "Exec", { container_id: plain, cmd: ["true"], stdout: true })).url;
  assert.notEqual(a, b, "every request gets its own single-use URL");

  const gone = "f".repeat(64);
  await rejectsWith(call(runtime, "Exec", { container_id: gone, cmd: ["ls"], stdout: true }), grpc.status.NOT_FOUND, new RegExp(gone));
  await rejectsWith(call(runtime, "Exec", { container_id: created, cmd: ["ls"], stdout: true }), grpc.status.FAILED_PRECONDITION, new RegExp(created));
  await rejectsWith(call(runtime, "Exec", { container_id: plain, cmd: [], stdout: true }), grpc.status.INVALID_ARGUMENT, /cmd is empty/);
  await rejectsWith(call(runtime, "Exec", { container_id: plain, cmd: ["ls"] }), grpc.status.INVALID_ARGUMENT, /one of stdin, stdout and stderr/);
  await rejectsWith(call(runtime, "Exec", { container_id: plain, cmd: ["ls"], tty: true, stdout: true, stderr: true }), grpc.status.INVALID_ARGUMENT, /tty and stderr/);
  await rejectsWith(call(runtime, "Attach", { container_id: gone, stdout: true }), grpc.status.NOT_FOUND, new RegExp(gone));
  await rejectsWith(call(runtime, "Attach", { container_id: plain, stdin: true, stdout: true }), grpc.status.FAILED_PRECONDITION, new RegExp(`${plain}.*not created with stdin`));
  await rejectsWith(call(runtime, "Attach", { container_id: created, stdout: true }), grpc.status.FAILED_PRECONDITION, new RegExp(created));
  await rejectsWith(call(runtime, "PortForward", { pod_sandbox_id: gone, port: [80] }), grpc.status.NOT_FOUND, new RegExp(gone));
  await rejectsWith(call(runtime, "PortForward", { pod_sandbox_id: pod, port: [0] }), grpc.status.INVALID_ARGUMENT, /port 0/);
  await call(runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  await rejectsWith(call(runtime, "PortForward", { pod_sandbox_id: pod, port: [80] }), grpc.status.FAILED_PRECONDITION, new RegExp(`${pod}" is not ready`));
  await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
  await until("the pod's shim to go", () => d.meta.shims.list().length === 0);
});
