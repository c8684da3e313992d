/** Records for the unit tests of the OCI spec builders (pod-spec, container-spec). Test-only. */
import type { ImageRecord } from "../metadata/index.js";
import type { SandboxRecord } from "./records.js";

/** An image record named `name` whose config is the empty one with `config` over it. */
export function testImage(name: string, config: Partial<ImageRecord["config"]> = {}, mediaType = "m"): ImageRecord {
  return {
    name,
    target: { digest: `sha256:${"a".repeat(64)}`, mediaType, size: 1 },
    configDigest: `sha256:${"b".repeat(64)}`,
    config: { os: "linux", architecture: "amd64", variant: "", entrypoint: [], cmd: [], env: [], user: "", workingDir: "", volumes: [], stopSignal: "", labels: {}, exposedPorts: [], diffIds: [], created: "", ...config },
    size: 1,
    labels: {},
    createdAt: 0,
    updatedAt: 0,
  };
}

/** A ready pod "ns/web" with its own namespaces and netns, with `o` over it. */
export function testPod(o: Partial<SandboxRecord> = {}): SandboxRecord {
  return {
    id: "p".repeat(64),
    name: "web",
    namespace: "ns",
    uid: "u",
    namespaces: { network: 0, pid: 0, ipc: 0 },
    netns: { name: "skiff-x", path: "/var/run/netns/skiff-x" },
    podDir: "/var/lib/skiff/pods/p",
    ...o,
  } as SandboxRecord;
}
