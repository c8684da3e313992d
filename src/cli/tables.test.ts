/** The verbs' tables, built from CRI messages as the runtime returns them. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { ContainerSchema, ContainerState, ContainerStatsSchema, ImageSchema, PodSandboxSchema, PodSandboxState } from "../gen/runtime/v1/api_pb.js";
import { containerRows } from "./cmd-containers.js";
import { podRows } from "./cmd-pods.js";
import { imageRows, parseCreds } from "./cmd-images.js";
import { cpuPercent, statsRows } from "./cmd-info.js";

const nowNs = () => BigInt(Date.now() - 5 * 60_000) * 1_000_000n;
const CID = "c".repeat(64);
const PID = "p".repeat(64);

test("ps: crictl's columns, short ids, pod names", () => {
  const c = create(ContainerSchema, {
    id: CID,
    podSandboxId: PID,
    metadata: { name: "web", attempt: 2 },
    image: { image: "docker.io/library/busybox:latest" },
    imageRef: "sha256:" + "e".repeat(64),
    state: ContainerState.CONTAINER_EXITED,
    createdAt: nowNs(),
  });
  const lines = containerRows([c], new Map([[PID, "mypod"]])).split("\n");
  assert.match(lines[0]!, /^CONTAINER\s+IMAGE\s+CREATED\s+STATE\s+NAME\s+ATTEMPT\s+POD ID\s+POD$/);
  assert.match(lines[1]!, /^c{13}\s+docker\.io\/library\/busybox:latest\s+5 minutes ago\s+Exited\s+web\s+2\s+p{13}\s+mypod$/);
  assert.match(containerRows([c], new Map(), true), new RegExp(`^${CID}\\s`, "m"), "--no-trunc keeps whole ids");
});

test("pods and images tables", () => {
  const p = create(PodSandboxSchema, { id: PID, metadata: { name: "mypod", namespace: "ns", attempt: 1 }, state: PodSandboxState.SANDBOX_NOTREADY, createdAt: nowNs() });
  assert.match(podRows([p]).split("\n")[1]!, /^p{13}\s+5 minutes ago\s+NotReady\s+mypod\s+ns\s+1\s+\(default\)$/);
  const img = create(ImageSchema, { id: "sha256:" + "1".repeat(64), repoTags: ["docker.io/library/busybox:latest", "localhost:5000/bb:1"], size: 1_234_567n });
  const bare = create(ImageSchema, { id: "sha256:" + "2".repeat(64), size: 10n });
  const lines = imageRows([img, bare]).trimEnd().split("\n");
  assert.deepEqual(lines.map((l) => l.split(/\s{3,}/)), [
    ["IMAGE", "TAG", "IMAGE ID", "SIZE"],
    ["<none>", "<none>", "2222222222222", "10B"],
    ["docker.io/library/busybox", "latest", "1111111111111", "1.23MB"],
    ["localhost:5000/bb", "1", "1111111111111", "1.23MB"],
  ]);
  assert.deepEqual(parseCreds("u:p:w"), { username: "u", password: "p:w" });
  assert.throws(() => parseCreds("nocolon"), /USERNAME:PASSWORD/);
});

test("stats: CPU % from two samples, memory and disk", () => {
  const sample = (cpuNs: bigint, atNs: bigint) =>
    create(ContainerStatsSchema, {
      attributes: { id: CID, metadata: { name: "web" } },
      cpu: { timestamp: atNs, usageCoreNanoSeconds: { value: cpuNs } },
      memory: { timestamp: atNs, workingSetBytes: { value: 2_500_000n } },
      writableLayer: { timestamp: atNs, usedBytes: { value: 4096n }, inodesUsed: { value: 12n } },
    });
  const a = sample(1_000_000_000n, 10_000_000_000n);
  const b = sample(1_500_000_000n, 11_000_000_000n);
  assert.equal(cpuPercent(a, b), "50.00");
  assert.equal(cpuPercent(undefined, b), "-");
  const lines = statsRows(new Map([[CID, a]]), [b]).trimEnd().split("\n");
  assert.deepEqual(lines[1]!.split(/\s{3,}/), ["c".repeat(13), "web", "50.00", "2.5MB", "4.1kB", "12"]);
});
