/**
 * CRI streaming end to end on a real daemon: Exec / Attach / PortForward RPCs return a URL on the
 * streaming server, and the independent test clients (test/streaming) speak SPDY/3.1 and
 * WebSocket to it, reaching a real container through the shim and runc.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { noteShims } from "./harness.js";
import { call } from "./cri-client.js";
import { ctrConfig, waitState, criFixture, runPod } from "./cri-helpers.js";
import { spdyExec, spdyForwardOnce, spdyPortForwardSession, wsDecode, wsEncode, wsExec } from "../streaming/k8s-clients.js";
import { wsConnect } from "../streaming/ws-client.js";
import { spdyConnect } from "../streaming/spdy-client.js";

test("CRI Exec → URL → SPDY and WebSocket clients run a command in a real container", { timeout: 180_000 }, async (t) => {
  const { env, d, runtime, logDir } = await criFixture(t);
  const { pod, podCfg, start } = await runPod(runtime, "crist", logDir);
  noteShims(env, d);
  const id = await start("sh", ["sleep", "3600"]);
  const exec = async (cmd: string[], o: { stdin?: boolean; tty?: boolean } = {}) =>
    (await call(runtime, "Exec", { container_id: id, cmd, tty: o.tty ?? false, stdin: o.stdin ?? false, stdout: true, stderr: !o.tty })).url as string;

  await t.test("SPDY v4: stdout/stderr separated, exit 7 → NonZeroExitCode", async () => {
    const url = await exec(["sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\//);
    const r = await spdyExec(url, ["v4.channel.k8s.io", "v3.channel.k8s.io"], {});
    assert.equal(r.protocol, "v4.channel.k8s.io");
    assert.equal(r.stdout, "out\n");
    assert.equal(r.stderr, "err\n");
    const st = JSON.parse(r.error);
    assert.equal(st.status, "Failure");
    assert.equal(st.reason, "NonZeroExitCode");
    assert.deepEqual(st.details.causes, [{ reason: "ExitCode", message: "7" }]);
  });

  await t.test("SPDY v4: stdin reaches the process, success status", async () => {
    const r = await spdyExec(await exec(["cat"], { stdin: true }), ["v4.channel.k8s.io"], { stdin: "through the shim\n" });
    assert.equal(r.stdout, "through the shim\n");
    assert.deepEqual(JSON.parse(r.error), { metadata: {}, status: "Success" });
  });

  await t.test("WebSocket v5: output, exit code, stdin closed by the close signal", async () => {
    const r = await wsExec(await exec(["sh", "-c", "cat; echo done >&2; exit 3"], { stdin: true }), ["v5.channel.k8s.io"], { stdin: "ws-in\n" });
    assert.equal(r.stdout, "ws-in\n");
    assert.equal(r.stderr, "done\n");
    assert.deepEqual(JSON.parse(r.error).details.causes, [{ reason: "ExitCode", message: "3" }]);
  });

  await t.test("the URL is single-use", async () => {
    const url = await exec(["true"]);
    const ok = await spdyExec(url, ["v4.channel.k8s.io"], {});
    assert.deepEqual(JSON.parse(ok.error), { metadata: {}, status: "Success" });
    const again = await spdyConnect(url, ["v4.channel.k8s.io"]);
    assert.equal(again.res.status, 404);
  });

  const until = async (what: string, ok: () => boolean | Promise<boolean>, ms = 10_000) => {
    const end = Date.now() + ms;
    while (!(await ok())) {
      assert.ok(Date.now() < end, `timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  await t.test("SPDY v4 with a terminal: a resize changes `stty size`; typed input comes back through cat", async () => {
    const sized = await spdyExec(await exec(["sh", "-c", "sleep 0.5; stty size"], { tty: true }), ["v4.channel.k8s.io"], {
      tty: true,
      resizes: [{ Width: 100, Height: 30 }],
    });
    assert.match(sized.stdout, /^30 100\r?$/m);
    const typed = await spdyExec(await exec(["cat"], { stdin: true, tty: true }), ["v4.channel.k8s.io"], { tty: true, stdin: "typed-in\n\x04" });
    assert.match(typed.stdout, /typed-in\r\n(.|\n)*typed-in/, "echoed by the terminal, then printed by cat");
    assert.deepEqual(JSON.parse(typed.error), { metadata: {}, status: "Success" });
  });

  await t.test("attach over SPDY v4 and WebSocket v5 at once to a container that echoes its stdin; leaving does not stop it", async () => {
    const echo = (await call(runtime, "CreateContainer", {
      pod_sandbox_id: pod,
      config: ctrConfig("echo", ["sh", "-c", "while read l; do echo \"got $l\"; done"], { stdin: true }),
      sandbox_config: podCfg,
    })).container_id as string;
    await call(runtime, "StartContainer", { container_id: echo });
    await waitState(runtime, echo, "CONTAINER_RUNNING");
    const url = (await call(runtime, "Attach", { container_id: echo, stdin: true, stdout: true, stderr: true })).url as string;
    assert.match(url, /\/attach\//);
    const { client } = await spdyConnect(url, ["v4.channel.k8s.io"]);
    await client!.openStream({ streamtype: "error" });
    const stdin = await client!.openStream({ streamtype: "stdin" });
    const stdout = await client!.openStream({ streamtype: "stdout" });
    await client!.openStream({ streamtype: "stderr" });
    await stdin.write("one\n");
    await until("the echo of the first line", () => stdout.text.includes("got one"));
    // A second attacher at the same time, over WebSocket (v5): both see the output; input from
    // either reaches the container.
    const wsUrl = (await call(runtime, "Attach", { container_id: echo, stdin: true, stdout: true, stderr: true })).url as string;
    const ws = (await wsConnect(wsUrl, ["v5.channel.k8s.io"])).client!;
    assert.equal(ws.protocol, "v5.channel.k8s.io");
    let wsOut = "";
    ws.on("message", (m: { data: Buffer }) => {
      if (m.data.length === 0) return;
      const msg = wsDecode(ws.protocol, m.data);
      if (msg.ch === 1) wsOut += msg.data.toString();
    });
    await new Promise((r) => setTimeout(r, 300)); // attached before the next line
    await stdin.write("two\n");
    await until("the echo of the second line on both", () => stdout.text.includes("got two") && wsOut.includes("got two"));
    ws.send(wsEncode(ws.protocol, 0, Buffer.from("three\n")).data);
    await until("the WebSocket attacher's line echoed to both", () => stdout.text.includes("got three") && wsOut.includes("got three"));
    assert.doesNotMatch(wsOut, /got one/, "an attacher sees output from when it attached");
    await ws.close();
    await stdin.write("four\n");
    await until("the SPDY attacher goes on after the other left", () => stdout.text.includes("got four"));
    await client!.close();
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await call(runtime, "ContainerStatus", { container_id: echo })).status.state, "CONTAINER_RUNNING");
  });

  await t.test("a client that disconnects mid-exec leaves no exec process behind", async () => {
    const { client } = await spdyConnect(await exec(["sleep", "4242"]), ["v4.channel.k8s.io"]);
    await client!.openStream({ streamtype: "error" });
    await client!.openStream({ streamtype: "stdout" });
    await client!.openStream({ streamtype: "stderr" });
    const ps = async () => (await call(runtime, "ExecSync", { container_id: id, cmd: ["ps", "-o", "args"] })).stdout.toString() as string;
    await until("the exec process", async () => (await ps()).includes("sleep 4242"));
    client!.socket.destroy(); // gone without a goodbye
    await until("the exec process to be killed", async () => !(await ps()).includes("sleep 4242"));
  });

  await t.test("PortForward → SPDY portforward.k8s.io reaches httpd in the pod, 20 connections at once", async () => {
    const web = (await call(runtime, "CreateContainer", {
      pod_sandbox_id: pod,
      config: ctrConfig("web", ["sh", "-c", "mkdir -p /www && echo hello-pf > /www/index.html && exec httpd -f -p 8080 -h /www"]),
      sandbox_config: podCfg,
    })).container_id as string;
    await call(runtime, "StartContainer", { container_id: web });
    await waitState(runtime, web, "CONTAINER_RUNNING");
    const url = (await call(runtime, "PortForward", { pod_sandbox_id: pod, port: [8080] })).url as string;
    assert.match(url, /\/portforward\//);
    const { res, client } = await spdyPortForwardSession(url);
    assert.equal(res.status, 101);
    const get = (i: number) => spdyForwardOnce(client!, 8080, String(i), "GET / HTTP/1.0\r\n\r\n");
    // httpd may need a moment before it listens.
    const end = Date.now() + 10_000;
    let n = 0;
    for (;;) {
      const r = await get(n++);
      if (r.data.includes("hello-pf")) break;
      assert.ok(Date.now() < end, `httpd never answered: ${r.error}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => get(1000 + i)));
    for (const a of answers) {
      assert.match(a.data, /hello-pf/);
      assert.equal(a.error, "");
    }
    await client!.close();
  });

  await call(runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
});
