import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from "./messages.js";

test("Request encodes as protobuf-go would (field order, varint timeout, KeyValue)", () => {
  const bytes = encodeRequest({
    service: "s",
    method: "m",
    payload: Uint8Array.of(0xaa),
    timeoutNano: 300,
    metadata: [{ key: "k", value: "v" }],
  });
  // 0a01 73 | 12 01 6d | 1a 01 aa | 20 ac02 | 2a 06 (0a 01 6b 12 01 76)
  assert.equal(Buffer.from(bytes).toString("hex"), "0a0173" + "12016d" + "1a01aa" + "20ac02" + "2a060a016b120176");
});

test("Request round trip keeps repeated metadata in order", () => {
  const req = {
    service: "containerd.task.v2.Task",
    method: "State",
    payload: Uint8Array.of(1, 2, 3),
    timeoutNano: 5_000_000_000,
    metadata: [
      { key: "containerd-namespace-ttrpc", value: "skiff" },
      { key: "a", value: "1" },
      { key: "a", value: "2" },
    ],
  };
  assert.deepEqual(decodeRequest(encodeRequest(req)), req);
});

test("unknown fields and known fields with another wire type are skipped", () => {
  const known = Buffer.from(encodeRequest({ service: "s", method: "m", payload: new Uint8Array(0), timeoutNano: 0, metadata: [] }));
  const extra = Buffer.from([
    0x30, 0x05, // field 6 varint
    0x3d, 1, 2, 3, 4, // field 7 fixed32
    0x41, 1, 2, 3, 4, 5, 6, 7, 8, // field 8 fixed64
    0x4a, 0x02, 0x68, 0x69, // field 9 bytes
    0x53, 0x08, 0x01, 0x54, // field 10 group containing field 1 varint
    0x08, 0x01, // field 1 (service) as varint: wrong wire type, skipped
  ]);
  const req = decodeRequest(Buffer.concat([extra, known]));
  assert.equal(req.service, "s");
  assert.equal(req.method, "m");
});

test("Response round trip with status and details; absent status means OK", () => {
  const res = {
    status: { code: 5, message: "not found", details: [{ typeUrl: "t", value: Uint8Array.of(9) }] },
    payload: new Uint8Array(0),
  };
  assert.deepEqual(decodeResponse(encodeResponse(res)), res);
  const ok = decodeResponse(encodeResponse({ status: undefined, payload: Uint8Array.of(4) }));
  assert.equal(ok.status, undefined);
  assert.deepEqual([...ok.payload], [4]);
  // Empty embedded Status (what containerd sends for OK) decodes to code 0.
  assert.equal(decodeResponse(Uint8Array.of(0x0a, 0x00)).status?.code, 0);
});

test("malformed protobuf throws instead of returning garbage", () => {
  for (const bad of [
    Uint8Array.of(0x0a, 0x05, 0x61), // length past the end
    Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff), // overlong tag
    Uint8Array.of(0x00), // field number 0
    Uint8Array.of(0x0c), // stray end-group
    Uint8Array.of(0x20, 0x80), // truncated varint
  ]) {
    assert.throws(() => decodeRequest(bad), Error, Buffer.from(bad).toString("hex"));
  }
  assert.throws(() => decodeResponse(Uint8Array.of(0x0a, 0x03, 0x08)));
});
