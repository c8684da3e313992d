import { test } from "node:test";
import assert from "node:assert/strict";
import { containerStatsToProto, podStatsToProto } from "./stats-rpcs.js";
import type { ContainerRecord, SandboxRecord } from "./records.js";

const c = { id: "c1", name: "web", attempt: 2, labels: { a: "1" }, annotations: { n: "x" } } as unknown as ContainerRecord;
const p = { id: "p1", name: "pod", uid: "u1", namespace: "ns", attempt: 1, labels: { app: "x" }, annotations: {} } as unknown as SandboxRecord;
const memory = { timestampNs: 5n, usageBytes: 100n, workingSetBytes: 60n, limitBytes: 200n, availableBytes: 140n, rssBytes: 50n, pageFaults: 7n, majorPageFaults: 1n };

test("container stats: attributes, CPU, memory and writable layer as runtime.v1 values", () => {
  const s = containerStatsToProto({
    container: c,
    cpu: { timestampNs: 5n, usageCoreNs: 123n, usageNanoCores: 9n },
    memory,
    writableLayer: { timestampNs: 6n, mountpoint: "/var/lib/skiff/snapshots", usedBytes: 4096n, inodesUsed: 2n },
  });
  assert.deepEqual([s.attributes?.id, s.attributes?.metadata?.name, s.attributes?.metadata?.attempt, s.attributes?.labels], ["c1", "web", 2, { a: "1" }]);
  assert.deepEqual([s.cpu?.timestamp, s.cpu?.usageCoreNanoSeconds?.value, s.cpu?.usageNanoCores?.value], [5n, 123n, 9n]);
  assert.deepEqual([s.memory?.workingSetBytes?.value, s.memory?.availableBytes?.value, s.memory?.usageBytes?.value, s.memory?.rssBytes?.value], [60n, 140n, 100n, 50n]);
  assert.deepEqual([s.writableLayer?.fsId?.mountpoint, s.writableLayer?.usedBytes?.value, s.writableLayer?.inodesUsed?.value], ["/var/lib/skiff/snapshots", 4096n, 2n]);
});

test("missing samples stay unset (not zero): first CPU sample has no nano cores", () => {
  const s = containerStatsToProto({ container: c, cpu: { timestampNs: 1n, usageCoreNs: 1n } });
  assert.equal(s.cpu?.usageNanoCores, undefined);
  assert.equal(s.memory, undefined);
  assert.equal(s.writableLayer, undefined);
  const m = containerStatsToProto({ container: c, memory: { ...memory, availableBytes: undefined } }).memory;
  assert.equal(m?.availableBytes, undefined, "no limit: no available bytes");
});

test("pod stats: attributes, network default interface and the others, process count, containers", () => {
  const s = podStatsToProto({
    pod: p,
    cpu: { timestampNs: 1n, usageCoreNs: 10n },
    memory,
    processCount: { timestampNs: 1n, count: 3n },
    network: {
      timestampNs: 2n,
      defaultInterface: { name: "eth0", rxBytes: 10n, rxErrors: 0n, txBytes: 20n, txErrors: 1n },
      interfaces: [{ name: "eth1", rxBytes: 1n, rxErrors: 0n, txBytes: 2n, txErrors: 0n }],
    },
    containers: [{ container: c }],
  });
  assert.deepEqual([s.attributes?.id, s.attributes?.metadata?.namespace, s.attributes?.metadata?.uid], ["p1", "ns", "u1"]);
  const l = s.linux!;
  assert.deepEqual([l.network?.defaultInterface?.name, l.network?.defaultInterface?.rxBytes?.value, l.network?.defaultInterface?.txErrors?.value], ["eth0", 10n, 1n]);
  assert.deepEqual(l.network?.interfaces.map((i) => i.name), ["eth1"]);
  assert.equal(l.process?.processCount?.value, 3n);
  assert.equal(l.containers[0]?.attributes?.id, "c1");
  assert.equal(podStatsToProto({ pod: p, containers: [] }).linux?.network, undefined);
});
