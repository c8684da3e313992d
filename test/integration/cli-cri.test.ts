/**
 * The crictl-like `skiff` CLI against a real skiffd: the README's quick start run verbatim (only
 * the endpoint comes from the environment), `run --rm`, `-o json`, and the message for a daemon
 * that is not running.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { makeEnv, cleanupEnv, startDaemon, noteShims, type Env } from "./harness.js";
import { run } from "../../src/util/exec.js";
import { startSlowRegistry } from "./cli-registry.js";
import { spawn } from "node:child_process";
import type { Daemon } from "../../src/daemon/daemon.js";

const repo = path.resolve(import.meta.dirname, "../..");
const cli = path.join(repo, "src/cmd/skiff.ts");
/** The pod's log_directory in examples/pod.json (the README's files are used as they are). */
const QUICKSTART_LOGS = "/tmp/skiff-quickstart";

/** A `skiff` on PATH that runs the sources, so README lines run exactly as written. */
async function skiffOnPath(env: Env): Promise<NodeJS.ProcessEnv> {
  const bin = path.join(env.dir, "bin");
  await mkdir(bin, { recursive: true });
  const script = `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(cli)} "$@"\n`;
  await writeFile(path.join(bin, "skiff"), script);
  await chmod(path.join(bin, "skiff"), 0o755);
  return {
    ...process.env,
    PATH: `${bin}:${process.env.PATH}`,
    CONTAINER_RUNTIME_ENDPOINT: `unix://${env.cfg.socket}`,
    SKIFF_CLI_CONFIG: "", // not the host's config file
  };
}

const skiff = (envVars: NodeJS.ProcessEnv, ...args: string[]) =>
  run(process.execPath, ["--import", "tsx", cli, ...args], { env: envVars, cwd: repo });

/** The shell lines between the quick-start markers of the README. */
async function quickstartLines(): Promise<string[]> {
  const readme = await readFile(path.join(repo, "README.md"), "utf8");
  const m = /<!-- quickstart:begin -->\s*```sh\n([\s\S]*?)```\s*<!-- quickstart:end -->/.exec(readme);
  assert.ok(m, "README has a quick-start block between the markers");
  return m[1]!.split("\n").filter((l) => l.trim() !== "" && !l.trim().startsWith("#"));
}

interface Step {
  line: string;
  out: string;
}

/**
 * Runs the lines in one bash (so `POD=$(…)` carries over), stopping at the first failure. Each
 * line's stdout is framed by markers; a `VAR=$(…)` line also prints the captured value.
 */
async function runScript(lines: string[], envVars: NodeJS.ProcessEnv, cwd: string) {
  const script = ["set -e"];
  lines.forEach((line, i) => {
    script.push(`echo "@@step ${i}"`, line);
    const v = /^([A-Z_]+)=\$\(/.exec(line);
    if (v) script.push(`echo "$${v[1]}"`);
  });
  script.push(`echo "@@step end"`);
  const r = await run("bash", ["-c", script.join("\n")], { env: envVars, cwd });
  const out = r.stdout.toString();
  const steps: Step[] = [];
  const parts = out.split(/^@@step (\d+|end)\n/m);
  for (let i = 1; i + 1 < parts.length; i += 2) if (parts[i] !== "end") steps.push({ line: lines[Number(parts[i])]!, out: parts[i + 1]! });
  return { code: r.code, stderr: r.stderr.toString(), steps, finished: out.includes("@@step end") };
}

async function startWithImages(t: { after: (fn: () => Promise<void>) => void }): Promise<{ env: Env; d: Daemon; vars: NodeJS.ProcessEnv }> {
  const env = await makeEnv();
  env.cfg.builtinImages = true;
  const d = await startDaemon(env);
  t.after(async () => {
    assert.deepEqual(await cleanupEnv(env, d), []);
  });
  return { env, d, vars: await skiffOnPath(env) };
}

test("the README quick start runs verbatim against skiffd", { timeout: 240_000 }, async (t) => {
  // The examples' log dir may hold a user's own quick start run: set aside, then put back.
  const existed = await stat(QUICKSTART_LOGS).then(() => true, () => false);
  const aside = `${QUICKSTART_LOGS}.before-test-${process.pid}`;
  if (existed) await rename(QUICKSTART_LOGS, aside);
  t.after(async () => {
    await rm(QUICKSTART_LOGS, { recursive: true, force: true });
    if (existed) await rename(aside, QUICKSTART_LOGS);
  });
  const { env, d, vars } = await startWithImages(t);
  const lines = await quickstartLines();
  assert.ok(lines.length >= 10, "the quick start has the whole lifecycle");
  const r = await runScript(lines, vars, repo);
  noteShims(env, d);
  const failed = r.steps.at(-1)?.line;
  assert.ok(r.finished, `quick start stopped at ${JSON.stringify(failed)} (exit ${r.code}): ${r.stderr}`);
  assert.equal(r.code, 0, r.stderr);

  const out = (prefix: string) => {
    const s = r.steps.find((x) => x.line.startsWith(prefix));
    assert.ok(s, `README runs ${prefix}`);
    return s.out;
  };
  assert.match(out("skiff version"), /RuntimeName:\s+skiff/);
  assert.match(out("skiff images"), /^IMAGE\s+TAG\s+IMAGE ID\s+SIZE$/m);
  assert.match(out("skiff images"), /^docker\.io\/library\/busybox\s+latest\s+[0-9a-f]{13}\s+\S+B$/m);
  const pod = out("POD=").trim();
  const ctr = out("CTR=").trim();
  assert.match(pod, /^[0-9a-f]{64}$/);
  assert.match(ctr, /^[0-9a-f]{64}$/);
  assert.equal(out("skiff start").trim(), ctr);
  assert.match(out("skiff pods"), new RegExp(`^${pod.slice(0, 13)}\\s+.* ago\\s+Ready\\s+quickstart\\s+default\\s+0\\s+`, "m"));
  const ps = out("skiff ps ").split("\n");
  assert.match(ps[0]!, /^CONTAINER\s+IMAGE\s+CREATED\s+STATE\s+NAME\s+ATTEMPT\s+POD ID\s+POD$/);
  assert.match(ps[1]!, new RegExp(`^${ctr.slice(0, 13)}\\s+docker\\.io/library/busybox:latest\\s+.+ ago\\s+Running\\s+hello\\s+0\\s+${pod.slice(0, 13)}\\s+quickstart$`));
  assert.equal(out("skiff logs"), "hello from skiff\n");
  assert.equal(out("skiff exec"), "hi from exec\n");
  const inspect = JSON.parse(out("skiff inspect")) as { status: { id: string; state: string; logPath: string } };
  assert.equal(inspect.status.id, ctr);
  assert.equal(inspect.status.state, "CONTAINER_RUNNING");
  assert.equal(inspect.status.logPath, path.join(QUICKSTART_LOGS, "hello.log"));
  assert.equal(out("skiff stop").trim(), `${ctr}\n${ctr}`);
  assert.equal(out("skiff stopp").trim(), `Stopped sandbox ${pod}\nRemoved sandbox ${pod}`);
  assert.equal(out("skiff ps -a").trim().split("\n").length, 1, "only the header is left");
  assert.equal(d.meta.shims.list().length, 0, "no shim record is left");
});

test("run --rm prints the output, passes the exit code and leaves nothing; -o json parses", { timeout: 180_000 }, async (t) => {
  const { env, d, vars } = await startWithImages(t);
  const pod = path.join(env.dir, "pod.yaml");
  const ctr = path.join(env.dir, "ctr.json");
  await writeFile(pod, `metadata:\n  name: once\n  namespace: default\n  uid: once-uid\nlog_directory: ${path.join(env.dir, "logs")}\n`);
  await writeFile(ctr, JSON.stringify({ metadata: { name: "once" }, image: { image: "busybox" }, command: ["sh", "-c", "echo out-line; echo err-line >&2; exit 3"], log_path: "once.log" }));

  const r = await skiff(vars, "run", "--rm", ctr, pod);
  noteShims(env, d);
  assert.equal(r.code, 3, `the container's exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout.toString(), "out-line\n");
  assert.equal(r.stderr.toString(), "err-line\n");
  assert.equal((await skiff(vars, "ps", "-a", "-q")).stdout.toString(), "");
  assert.equal((await skiff(vars, "pods", "-q")).stdout.toString(), "");

  // Ctrl-C during `run --rm` still removes the pod and the container.
  await writeFile(ctr, JSON.stringify({ metadata: { name: "sleeper" }, image: { image: "busybox" }, command: ["sleep", "3600"] }));
  const sleeper = spawn(process.execPath, ["--import", "tsx", cli, "run", "--rm", ctr, pod], { env: vars, cwd: repo, stdio: "ignore" });
  const sleeperExit = new Promise<number | null>((r) => sleeper.once("exit", (code) => r(code)));
  for (let i = 0; i < 100 && !(await skiff(vars, "ps", "-q")).stdout.toString().trim(); i++) await new Promise((r) => setTimeout(r, 200));
  noteShims(env, d);
  sleeper.kill("SIGINT"); // our child, by its handle
  assert.equal(await sleeperExit, 1, "an interrupted run exits 1");
  assert.equal((await skiff(vars, "ps", "-a", "-q")).stdout.toString(), "");
  assert.equal((await skiff(vars, "pods", "-q")).stdout.toString(), "");

  // A long-running one without --rm: listed in JSON, then removed with rmp -f.
  await writeFile(ctr, JSON.stringify({ metadata: { name: "long" }, image: { image: "busybox" }, command: ["sleep", "3600"] }));
  const started = await skiff(vars, "run", ctr, pod);
  noteShims(env, d);
  assert.equal(started.code, 0, started.stderr.toString());
  const id = started.stdout.toString().trim();
  const listed = JSON.parse((await skiff(vars, "ps", "-o", "json")).stdout.toString()) as { containers: { id: string; state: string; metadata: { name: string } }[] };
  assert.deepEqual(listed.containers.map((c) => [c.id, c.state, c.metadata.name]), [[id, "CONTAINER_RUNNING", "long"]]);
  const stats = await skiff(vars, "stats", "--seconds", "0", id.slice(0, 10));
  assert.equal(stats.code, 0, stats.stderr.toString());
  assert.match(stats.stdout.toString(), new RegExp(`^${id.slice(0, 13)}\\s+long\\s+\\S+\\s+\\S+B\\s`, "m"));
  const pods = JSON.parse((await skiff(vars, "pods", "-o", "json")).stdout.toString()) as { items: { id: string; state: string }[] };
  assert.equal(pods.items.length, 1);
  assert.equal(pods.items[0]!.state, "SANDBOX_READY");
  const yaml = (await skiff(vars, "inspectp", "-o", "yaml", pods.items[0]!.id.slice(0, 8))).stdout.toString();
  assert.match(yaml, /^status:\n {2}id: [0-9a-f]{64}$/m, "inspectp takes an id prefix and prints YAML");

  // exec -i / -t go through the streaming server (CRI Exec + WebSocket channels).
  const piped = await run(process.execPath, ["--import", "tsx", cli, "exec", "-i", id.slice(0, 12), "sh", "-c", "read x; echo got $x; echo to-err >&2; exit 4"], {
    env: vars,
    cwd: repo,
    input: "hello\n",
  });
  assert.equal(piped.code, 4, piped.stderr.toString());
  assert.equal(piped.stdout.toString(), "got hello\n");
  assert.equal(piped.stderr.toString(), "to-err\n");
  const tty = await run("script", ["-qec", `skiff exec -it ${id} sh -c 'tty; exit 0'`, "/dev/null"], { env: vars, cwd: repo });
  assert.equal(tty.code, 0, tty.stdout.toString());
  assert.match(tty.stdout.toString(), /\/dev\/pts\/\d+/);

  // logs -f follows a container's output and ends by itself once it exits.
  const ticker = path.join(env.dir, "ticker.json");
  await writeFile(ticker, JSON.stringify({ metadata: { name: "ticker" }, image: { image: "busybox" }, command: ["sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 0.4; done"], log_path: "ticker.log" }));
  const tid = (await skiff(vars, "create", pods.items[0]!.id.slice(0, 12), ticker, pod)).stdout.toString().trim();
  assert.match(tid, /^[0-9a-f]{64}$/);
  assert.equal((await skiff(vars, "start", tid)).code, 0);
  noteShims(env, d);
  const follow = await skiff(vars, "logs", "-f", tid.slice(0, 12));
  assert.equal(follow.code, 0, follow.stderr.toString());
  assert.equal(follow.stdout.toString(), "tick 1\ntick 2\ntick 3\n");
  assert.match((await skiff(vars, "logs", "--tail", "1", "--timestamps", tid)).stdout.toString(), /^\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d) tick 3\n$/);
  assert.match((await skiff(vars, "ps", "-a", "--name", "^tick")).stdout.toString(), /\sExited\s+ticker\s/);

  const busy = await skiff(vars, "rmp", pods.items[0]!.id);
  assert.equal(busy.code, 1);
  assert.match(busy.stderr.toString(), /^skiff: rmp: invalid_argument: pod sandbox [0-9a-f]{64} is ready: stop it first/);
  const missing = await skiff(vars, "inspect", "0000000000000000000000000000000000000000000000000000000000000000");
  assert.equal(missing.code, 1);
  assert.match(missing.stderr.toString(), /^skiff: inspect: NotFound: .*0{64}/);
  assert.equal((await skiff(vars, "rmp", "-f", pods.items[0]!.id)).code, 0);
  assert.equal((await skiff(vars, "ps", "-a", "-q")).stdout.toString(), "");
  assert.equal(d.meta.shims.list().length, 0);
});

test("skiff ps without a daemon says how to start one and exits 1", { timeout: 60_000 }, async () => {
  const sock = "/run/skiff-cli-test-no-daemon.sock";
  const r = await skiff({ ...process.env, CONTAINER_RUNTIME_ENDPOINT: `unix://${sock}`, SKIFF_CLI_CONFIG: "" }, "ps");
  assert.equal(r.code, 1);
  assert.equal(r.stderr.toString(), `skiff: skiffd is not running at ${sock} — start it with \`make run\` or \`skiffd --config …\`\n`);
  assert.equal(r.stdout.toString(), "");
});

test("images, import, rmi, pull errors, info, version, stats and events", { timeout: 180_000 }, async (t) => {
  const { env, d, vars } = await startWithImages(t);
  const withDebug = (...args: string[]) => skiff(vars, "--debug-socket", env.cfg.debugSocket, ...args);

  const ids = (await skiff(vars, "images", "-q")).stdout.toString().trim().split("\n");
  assert.equal(ids.length, 2, "the built-in busybox and pause images");
  for (const id of ids) assert.match(id, /^sha256:[0-9a-f]{64}$/);
  const imgs = JSON.parse((await skiff(vars, "images", "-o", "json")).stdout.toString()) as { images: { repoTags: string[] }[] };
  assert.ok(imgs.images.some((i) => i.repoTags.includes("docker.io/library/busybox:latest")));

  // events: a stream of container events while a container runs.
  const child = spawn(process.execPath, ["--import", "tsx", cli, "events", "-o", "json"], { env: vars, cwd: repo, stdio: ["ignore", "pipe", "pipe"] });
  let evOut = "";
  let evErr = "";
  child.stdout.on("data", (b: Buffer) => (evOut += b.toString()));
  child.stderr.on("data", (b: Buffer) => (evErr += b.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL"); // our child, by its handle (PID)
    await exited;
  });
  await new Promise((r) => setTimeout(r, 3000)); // the client is subscribed by then
  const podFile = path.join(env.dir, "ev-pod.json");
  const ctrFile = path.join(env.dir, "ev-ctr.json");
  await writeFile(podFile, JSON.stringify({ metadata: { name: "ev", namespace: "default", uid: "ev-uid" } }));
  await writeFile(ctrFile, JSON.stringify({ metadata: { name: "ev" }, image: { image: "busybox" }, command: ["true"] }));
  const once = await skiff(vars, "run", "--rm", ctrFile, podFile);
  noteShims(env, d);
  assert.equal(once.code, 0, once.stderr.toString());
  assert.equal(child.exitCode, null, `events ended early: ${evErr}`);
  const end = Date.now() + 10_000;
  while (!evOut.includes("CONTAINER_DELETED_EVENT") && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  const types = evOut.trim().split("\n").filter(Boolean).map((l) => (JSON.parse(l) as { containerEventType: string }).containerEventType);
  t.diagnostic(`events: ${types.join(" ")}`);
  for (const want of ["CONTAINER_CREATED_EVENT", "CONTAINER_STARTED_EVENT", "CONTAINER_STOPPED_EVENT", "CONTAINER_DELETED_EVENT"]) {
    assert.ok(types.includes(want), `${want} in ${types.join(", ")} (stderr: ${evErr})`);
  }

  // import: an archive of busybox (written by the daemon's own exporter) under a new name.
  const archive = path.join(env.dir, "bb.tar");
  await d.images.export(["docker.io/library/busybox:latest"], archive);
  const imp = await withDebug("import", archive, "--name", "localhost/imported:1");
  assert.equal(imp.code, 0, imp.stderr.toString());
  assert.match(imp.stdout.toString(), /^Imported localhost\/imported:1 \([0-9a-f]{13}\)\n$/);
  assert.match((await skiff(vars, "images", "localhost/imported:1")).stdout.toString(), /^localhost\/imported\s+1\s+[0-9a-f]{13}\s/m);
  const bad = await withDebug("import", path.join(env.dir, "missing.tar"));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr.toString(), /^skiff: import: .*missing\.tar/);

  // rmi removes the image (every name of it, as crictl's rmi does); a second time it is gone.
  const rmi = await skiff(vars, "rmi", "localhost/imported:1");
  assert.equal(rmi.code, 0, rmi.stderr.toString());
  assert.match(rmi.stdout.toString(), /^Deleted: localhost\/imported:1$/m);
  const again = await skiff(vars, "rmi", "localhost/imported:1");
  assert.equal(again.code, 1);
  assert.match(again.stderr.toString(), /^skiff: rmi: not_found: no such image "localhost\/imported:1"/);

  // A pull that cannot reach its registry fails with the gRPC code; plain progress lines off a TTY.
  const pull = await withDebug("--timeout", "20s", "pull", "127.0.0.1:9/none/such:1");
  assert.equal(pull.code, 1);
  assert.match(pull.stderr.toString(), /^Pulling 127\.0\.0\.1:9\/none\/such:1\n/);
  assert.match(pull.stderr.toString(), /^skiff: pull: [A-Za-z]+: /m);

  const info = JSON.parse((await skiff(vars, "info")).stdout.toString()) as { status: { conditions: { type: string; status: boolean }[] } };
  assert.deepEqual(info.status.conditions.map((c) => [c.type, c.status]), [["RuntimeReady", true], ["NetworkReady", true]]);
  assert.match((await skiff(vars, "version")).stdout.toString(), /^Version:\s+\S+\nRuntimeName:\s+skiff\nRuntimeVersion:\s+\S+\nRuntimeApiVersion:\s+v1\n$/);

  const stats = await skiff(vars, "stats", "-a", "--seconds", "0");
  assert.equal(stats.code, 0, stats.stderr.toString());
  assert.match(stats.stdout.toString(), /^CONTAINER\s+NAME\s+CPU %\s+MEM\s+DISK\s+INODES$/m);
  noteShims(env, d);
});

test("pull: credentials, per-blob progress bars on a terminal, then the image is listed", { timeout: 180_000 }, async (t) => {
  const env = await makeEnv();
  const reg = await startSlowRegistry(t, env.dir, "alice:s3cret");
  env.cfg.registry.hosts.push({ host: reg.host, insecure: true });
  const d = await startDaemon(env);
  t.after(async () => {
    assert.deepEqual(await cleanupEnv(env, d), []);
  });
  const vars = await skiffOnPath(env);
  const ref = `${reg.host}/slow:1`;

  const denied = await skiff(vars, "pull", ref);
  assert.equal(denied.code, 1);
  assert.match(denied.stderr.toString(), /^skiff: pull: [A-Za-z]+: .*(401|auth|denied|credentials)/im);

  // `script` gives the CLI a terminal: the progress is drawn in place there.
  const cmd = `skiff --debug-socket ${env.cfg.debugSocket} pull --creds alice:s3cret ${ref}`;
  const r = await run("script", ["-qec", cmd, "/dev/null"], { env: vars, cwd: repo });
  const text = r.stdout.toString();
  assert.equal(r.code, 0, text);
  const short = reg.layerDigest.slice("sha256:".length, "sha256:".length + 12);
  assert.match(text, new RegExp(`${short}: \\[=*>? *\\] \\S+B/\\S+B`), `a bar for the layer while it downloads: ${JSON.stringify(text.slice(0, 400))}`);
  assert.match(text, new RegExp(`Pulled ${ref.replaceAll(".", "\\.")} \\(\\d+s\\)`));
  assert.match(text, new RegExp(`${short}: done`));
  assert.match(text, /Image is up to date for sha256:[0-9a-f]{64}/);
  assert.match((await skiff(vars, "images")).stdout.toString(), new RegExp(`^${reg.host.replaceAll(".", "\\.")}/slow\\s+1\\s+[0-9a-f]{13}\\s`, "m"));
});
