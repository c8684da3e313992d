/** The containerd 1.6.20 side of bench/cri.bench.ts: a test-owned peer on a network of its own. */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { randomBytes, randomInt } from "node:crypto";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { defaultConflist } from "../src/cni/config.js";
import { run } from "../src/util/exec.js";
import { startPeerContainerd } from "../test/peer/containerd.js";
import { builtinImageArchive, PAUSE_IMAGE } from "../test/peer/images.js";

export async function containerdTarget() {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-bench-peer-"));
  const bridge = `skq${randomBytes(3).toString("hex")}`;
  const confDir = path.join(dir, "net.d");
  await mkdir(confDir);
  const conf = defaultConflist({ subnet: `10.${randomInt(200, 250)}.0.0/16`, bridge, name: `${bridge}-net`, dataDir: path.join(dir, "ipam") });
  await writeFile(path.join(confDir, "10-bench.conflist"), JSON.stringify(conf));
  const archive = await builtinImageArchive(dir);
  const peer = await startPeerContainerd({ cniConfDir: confDir, images: [{ archive }], sandboxImage: PAUSE_IMAGE });
  const logDir = path.join(dir, "logs");
  await mkdir(logDir);
  const cleanup = async () => {
    await peer.stop();
    await run("ip", ["link", "del", bridge]);
    await rm(dir, { recursive: true, force: true });
  };
  return { target: { name: "containerd", socket: peer.socket, pid: peer.pid, logDir, stop: () => peer.stop() }, cleanup };
}
