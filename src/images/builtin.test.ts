import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { access, constants, lstat, mkdir, readFile } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { ContentStore } from "../content/store.js";
import { MetadataStore } from "../metadata/index.js";
import { unmountAll } from "../runtime/mount-linux.js";
import { mountAll } from "../snapshots/mount.js";
import { OverlaySnapshotter } from "../snapshots/overlay.js";
import { runChecked } from "../util/exec.js";
import { BUILTIN_LABEL, buildBuiltinImages, BUSYBOX_IMAGE, PAUSE_IMAGE } from "./builtin.js";
import { parseManifest } from "./oci.js";
import { ImageService } from "./service.js";
import { tempRoot } from "./testing.js";

const PAUSE_SOURCE = path.resolve(import.meta.dirname, "../../native/pause.c");

describe("built-in images", () => {
  let root: string;
  let cleanup: () => Promise<void>;
  let pause: string;
  const metas: MetadataStore[] = [];

  before(async () => {
    ({ dir: root, cleanup } = await tempRoot("skiff-builtin-"));
    pause = path.join(root, "pause");
    await runChecked("gcc", ["-Os", "-static", "-o", pause, PAUSE_SOURCE]);
  });
  after(async () => {
    for (const m of metas) m.close();
    await cleanup();
  });

  const env = (name: string) => {
    const meta = MetadataStore.open(":memory:");
    metas.push(meta);
    const dir = path.join(root, name);
    return { meta, dir, store: new ContentStore(dir), images: meta.images, workDir: path.join(dir, "work"), pauseBinary: pause };
  };

  test("the pause program is static and exits 0 on SIGTERM (and on SIGINT)", async () => {
    const file = await runChecked("file", [pause]);
    assert.match(file.stdout.toString(), /statically linked/);
    for (const sig of ["SIGTERM", "SIGINT"] as const) {
      const child = spawn(pause, [], { stdio: "ignore" });
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(child.exitCode, null, "still running before the signal");
      const started = Date.now();
      const exited = new Promise<[number | null, string | null]>((r) => child.on("exit", (c, s) => r([c, s])));
      child.kill(sig);
      assert.deepEqual(await exited, [0, null], sig);
      assert.ok(Date.now() - started < 1000);
    }
  });

  test("the pause program reaps its children", async () => {
    // A child of pause that exits must not stay a zombie: pause is started via a shell that
    // execs it after forking a short-lived background child.
    const child = spawn("/bin/sh", ["-c", `sleep 0.1 & exec ${pause}`], { stdio: "ignore" });
    await new Promise((r) => setTimeout(r, 600));
    const kids = (await readFile(`/proc/${child.pid}/task/${child.pid}/children`, "utf8")).trim();
    const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    child.kill("SIGTERM");
    assert.equal(kids, "", "no zombie left under pause");
    assert.equal(await exited, 0);
  });

  test("building twice (two stores, or again in one) gives the same digests and is idempotent", async () => {
    const a = env("a");
    const b = env("b");
    const first = await buildBuiltinImages(a);
    assert.deepEqual(first.map((i) => i.name), [PAUSE_IMAGE, BUSYBOX_IMAGE]);
    const second = await buildBuiltinImages(b);
    assert.deepEqual(second.map((i) => i.target.digest), first.map((i) => i.target.digest));
    assert.deepEqual(second.map((i) => i.configDigest), first.map((i) => i.configDigest));
    const again = await buildBuiltinImages(a);
    assert.deepEqual(again, first, "already recorded: nothing rebuilt or re-recorded");
    assert.deepEqual(a.images.list({ labels: { [BUILTIN_LABEL]: "true" } }).map((i) => i.name).sort(), [BUSYBOX_IMAGE, PAUSE_IMAGE].sort());
    const p = first[0]!;
    assert.deepEqual(p.config.entrypoint, ["/pause"]);
    assert.deepEqual(first[1]!.config.cmd, ["sh"]);
    const m = parseManifest(await a.store.readAll(p.target.digest));
    assert.equal(m.layers.length, 1);
    assert.ok(await a.store.has(m.layers[0]!.digest));

    // A gc'd blob makes the image incomplete: the next call rebuilds it to the same digest.
    await a.store.delete(m.layers[0]!.digest);
    const rebuilt = await buildBuiltinImages(a);
    assert.equal(rebuilt[0]!.target.digest, p.target.digest);
    assert.ok(await a.store.has(m.layers[0]!.digest));
  });

  test("busybox unpacks to a rootfs with bin/sh that runs; pause has /pause", async (t) => {
    const e = env("c");
    await buildBuiltinImages(e);
    const svc = new ImageService({ content: e.store, images: e.images, snapshotsDir: path.join(e.dir, "snapshots") });
    const sn = new OverlaySnapshotter(e.dir);
    t.after(() => sn.close());
    const target = path.join(e.dir, "rootfs");
    await mkdir(target);
    t.after(() => unmountAll(target));

    await mountAll(await sn.prepare("bb", await svc.unpack(BUSYBOX_IMAGE, sn)), target);
    await access(path.join(target, "bin/sh"), constants.X_OK);
    assert.equal(((await lstat(path.join(target, "tmp"))).mode & 0o7777).toString(8), "1777");
    assert.match(await readFile(path.join(target, "etc/passwd"), "utf8"), /^root:x:0:0:/);
    const out = await runChecked("chroot", [target, "/bin/sh", "-c", "echo hello from $(id -u)"]);
    assert.equal(out.stdout.toString().trim(), "hello from 0");
    await unmountAll(target);

    await mountAll(await sn.prepare("p", await svc.unpack(PAUSE_IMAGE, sn)), target);
    const st = await lstat(path.join(target, "pause"));
    assert.ok(st.isFile() && (st.mode & 0o111) !== 0);
    assert.equal(st.uid, 0);
    await unmountAll(target);
  });
});
