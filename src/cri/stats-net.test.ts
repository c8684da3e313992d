import { test } from "node:test";
import assert from "node:assert/strict";
import { parseNetDev, readNetDev } from "./stats-net.js";

const NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1200      12    0    0    0     0          0         0     1200      12    0    0    0     0       0          0
  eth0: 5230345    4021    3    0    0     0          0         0   321456    2211    1    0    0     0       0          0
 veth1:       7       1    0    0    0     0          0         0        9       1    0    0    0     0       0          0
`;

test("net/dev: per-interface rx/tx bytes and errors, loopback left out", () => {
  assert.deepEqual(parseNetDev(NET_DEV), [
    { name: "eth0", rxBytes: 5230345n, rxErrors: 3n, txBytes: 321456n, txErrors: 1n },
    { name: "veth1", rxBytes: 7n, rxErrors: 0n, txBytes: 9n, txErrors: 0n },
  ]);
  assert.deepEqual(parseNetDev("junk\n eth0: 1 2 3\n"), [], "short lines skipped");
});

test("own namespace is readable; a gone pid gives undefined", async () => {
  assert.ok(Array.isArray(await readNetDev(process.pid)));
  assert.equal(await readNetDev(2 ** 22 + 7), undefined);
});
