/**
 * The CLI's streaming verbs against a real skiffd, through its streaming server: `skiff exec -it`
 * in a real terminal (tmux: keys sent, the pane read back, the window resized), `skiff attach`
 * to a container that echoes its stdin, and `skiff port-forward` to an HTTP server in a pod with
 * 20 parallel connections.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, writeFile } from "node:fs/promises";
import * as http from "node:http";
import * as path from "node:path";
import { call } from "./cri-client.js";
import { criFixture, runPod } from "./cri-helpers.js";
import { run, runChecked } from "../../src/util/exec.js";

const repo = path.resolve(import.meta.dirname, "../..");
const cli = path.join(repo, "src/cmd/skiff.ts");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve(body));
      })
      .on("error", reject)
      .setTimeout(10_000, function (this: http.ClientRequest) {
        this.destroy(new Error("timeout"));
      });
  });
}

test("skiff exec -it in tmux, attach, port-forward through the streaming server", { timeout: 180_000 }, async (t) => {
  const session = `skiff-test-${randomBytes(4).toString("hex")}`;
  const children: ChildProcess[] = [];
  // The tmux session and the CLI processes go before the fixture checks the env for leftovers.
  const { env, runtime, logDir } = await criFixture({
    after: (fn) =>
      t.after(async () => {
        await run("tmux", ["kill-session", "-t", session]);
        for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
        await fn();
      }),
  });
  const vars = { ...process.env, CONTAINER_RUNTIME_ENDPOINT: `unix://${env.cfg.socket}`, SKIFF_CLI_CONFIG: "" };
  const { pod, start: startCtr } = await runPod(runtime, "stream", logDir);

  // exec -it in a real terminal.
  const shell = await startCtr("shell", ["sleep", "3600"]);
  const wrapper = path.join(env.dir, "skiff");
  await writeFile(
    wrapper,
    `#!/bin/sh\nexport CONTAINER_RUNTIME_ENDPOINT=${JSON.stringify(vars.CONTAINER_RUNTIME_ENDPOINT)} SKIFF_CLI_CONFIG=\nexec ${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(cli)} "$@"\n`,
  );
  await chmod(wrapper, 0o755);
  // The pane keeps the exit code visible and stays open after the command ends.
  await runChecked("tmux", ["new-session", "-d", "-s", session, "-x", "120", "-y", "40", `${wrapper} exec -it ${shell.slice(0, 12)} sh; echo "EXIT=$?"; sleep 600`]);
  const pane = async () => (await runChecked("tmux", ["capture-pane", "-p", "-t", session])).stdout.toString();
  const keys = (...k: string[]) => runChecked("tmux", ["send-keys", "-t", session, ...k]);
  await until("the shell prompt", async () => ((await pane()).includes("#") ? true : undefined));
  await keys("echo hi-$((40+2))", "Enter");
  await until("the command's output", async () => ((await pane()).includes("hi-42") ? true : undefined));
  await keys("stty size", "Enter");
  await until("the terminal size", async () => (/^40 120\s*$/m.test(await pane()) ? true : undefined));
  await runChecked("tmux", ["resize-window", "-t", session, "-x", "100", "-y", "30"]);
  await sleep(300);
  await keys("clear; stty size", "Enter");
  await until("the new size after a resize", async () => (/^30 100\s*$/m.test(await pane()) ? true : undefined));
  await keys("tty; exit 5", "Enter");
  const shown = await until("the exit code", async () => {
    const p = await pane();
    return p.includes("EXIT=") ? p : undefined;
  });
  assert.match(shown, /^\/dev\/pts\/\d+\s*$/m, "the command had a terminal");
  assert.match(shown, /EXIT=5/, "skiff exec exits with the command's code");

  // attach -i to a container that echoes its stdin; detaching leaves it running.
  const echo = await startCtr("echo", ["sh", "-c", "while read l; do echo \"got $l\"; done"], { stdin: true });
  const att = spawn(process.execPath, ["--import", "tsx", cli, "attach", "-i", echo], { env: vars, stdio: ["pipe", "pipe", "pipe"] });
  children.push(att);
  let attOut = "";
  att.stdout!.on("data", (b: Buffer) => (attOut += b.toString()));
  await sleep(1500);
  att.stdin!.write("one\n");
  await until("the echo of the first line", async () => (attOut.includes("got one") ? true : undefined));
  att.stdin!.write("two\n");
  await until("the echo of the second line", async () => (attOut.includes("got two") ? true : undefined));
  att.kill("SIGINT");
  await new Promise((r) => att.once("exit", r));
  assert.equal((await call(runtime, "ContainerStatus", { container_id: echo })).status.state, "CONTAINER_RUNNING", "still running after the detach");

  // port-forward to an HTTP server in the pod.
  await startCtr("web", ["sh", "-c", "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 8080 -h /www"]);
  const pf = spawn(process.execPath, ["--import", "tsx", cli, "port-forward", pod, ":8080"], { env: vars, stdio: ["ignore", "pipe", "pipe"] });
  children.push(pf);
  let pfOut = "";
  let pfErr = "";
  pf.stdout!.on("data", (b: Buffer) => (pfOut += b.toString()));
  pf.stderr!.on("data", (b: Buffer) => (pfErr += b.toString()));
  const local = await until("the forwarding line", async () => /Forwarding from 127\.0\.0\.1:(\d+) -> 8080/.exec(pfOut)?.[1]);
  const url = `http://127.0.0.1:${local}/`;
  assert.equal(await until("the page", () => httpGet(url).catch(() => undefined)), "hello-from-pod\n");
  const pages = await Promise.all(Array.from({ length: 20 }, () => httpGet(url)));
  assert.deepEqual(pages, Array(20).fill("hello-from-pod\n"), `20 parallel connections (stderr: ${pfErr})`);
  pf.kill("SIGINT");
  assert.equal(await new Promise((r) => pf.once("exit", r)), 0, "port-forward ends cleanly on Ctrl-C");

  await call(runtime, "StopPodSandbox", { pod_sandbox_id: pod });
  await call(runtime, "RemovePodSandbox", { pod_sandbox_id: pod });
});
