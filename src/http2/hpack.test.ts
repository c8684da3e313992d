import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeHeaderBlock, HpackDecoder, HpackError, STATIC_TABLE, type HeaderField } from "./hpack.js";
import { huffmanDecode, HuffmanError } from "./huffman.js";

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");
const pairs = (fields: HeaderField[]) => fields.map((f) => [f.name, f.value]);

// Request examples of RFC 7541 Appendix C.4: three header blocks on one connection, Huffman-coded,
// each referring to the dynamic table the previous one built.
test("RFC 7541 C.4: three Huffman-coded requests sharing a dynamic table", () => {
  const d = new HpackDecoder();
  assert.deepEqual(pairs(d.decode(hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"))), [
    [":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"],
  ]);
  assert.equal(d.tableSize, 57);
  assert.deepEqual(pairs(d.decode(hex("8286 84be 5886 a8eb 1064 9cbf"))), [
    [":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"], ["cache-control", "no-cache"],
  ]);
  assert.equal(d.tableSize, 110);
  assert.deepEqual(pairs(d.decode(hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"))), [
    [":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"], ["custom-key", "custom-value"],
  ]);
  assert.equal(d.tableSize, 164);
});

test("RFC 7541 C.3.1: a request without Huffman coding", () => {
  const d = new HpackDecoder();
  assert.deepEqual(pairs(d.decode(hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"))), [
    [":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"],
  ]);
});

test("the static table has RFC 7541's 61 entries", () => {
  assert.equal(STATIC_TABLE.length, 61);
  assert.deepEqual(STATIC_TABLE[0], [":authority", ""]);
  assert.deepEqual(STATIC_TABLE[30], ["content-type", ""]);
  assert.deepEqual(STATIC_TABLE[57], ["user-agent", ""]);
  assert.deepEqual(STATIC_TABLE[60], ["www-authenticate", ""]);
});

/** A literal with incremental indexing and a new name, strings raw. */
function indexedLiteral(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x40, name.length]), Buffer.from(name, "latin1"), Buffer.from([value.length]), Buffer.from(value, "latin1")]);
}

test("eviction: the oldest entry leaves when a new one does not fit; index 62 is always the newest", () => {
  // Table of 100 octets: entries of 32 + 2 + 8 = 42 octets each, two fit, the third evicts the first.
  const d = new HpackDecoder(100);
  d.decode(Buffer.concat([Buffer.from([0x3f, 0x45]), indexedLiteral("a1", "11111111")])); // size update to 31+69=100
  d.decode(indexedLiteral("a2", "22222222"));
  assert.equal(d.tableSize, 84);
  d.decode(indexedLiteral("a3", "33333333"));
  assert.equal(d.tableSize, 84);
  // 62 → a3, 63 → a2; 64 is gone.
  assert.deepEqual(pairs(d.decode(Buffer.from([0x80 | 62, 0x80 | 63]))), [["a3", "33333333"], ["a2", "22222222"]]);
  assert.throws(() => d.decode(Buffer.from([0x80 | 64])), HpackError);
});

test("an entry larger than the table empties it and is not added", () => {
  const d = new HpackDecoder(60);
  d.decode(indexedLiteral("ab", "x"));
  assert.equal(d.tableSize, 35);
  d.decode(indexedLiteral("ab", "y".repeat(40)));
  assert.equal(d.tableSize, 0);
});

test("a size update shrinks the table at once, and may not exceed the advertised size", () => {
  const d = new HpackDecoder(4096);
  d.decode(indexedLiteral("k", "v"));
  assert.equal(d.tableSize, 34);
  d.decode(Buffer.from([0x20])); // size 0
  assert.equal(d.tableSize, 0);
  // 31 + 0x62 + 0x1f·128 = 4097 is one too many; 31 + 0x61 + 0x1f·128 = 4096 is allowed.
  assert.throws(() => new HpackDecoder(4096).decode(Buffer.from([0x3f, 0xe2, 0x1f])), /exceeds the advertised 4096/);
  assert.doesNotThrow(() => new HpackDecoder(4096).decode(Buffer.from([0x3f, 0xe1, 0x1f])));
  assert.throws(() => new HpackDecoder().decode(Buffer.concat([Buffer.from([0x82]), Buffer.from([0x20])])), /after a header field/);
});

test("malformed blocks are HpackErrors, and the decoder stays broken after one", () => {
  const cases: [string, Buffer][] = [
    ["index 0", Buffer.from([0x80])],
    ["truncated integer", Buffer.from([0xff])],
    ["string past the end", Buffer.from([0x40, 0x05, 0x61])],
    ["field cut after its name", Buffer.from([0x40, 0x01, 0x61])],
    ["integer too large", Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])],
    ["huffman EOS", Buffer.from([0x04, 0x84, 0xff, 0xff, 0xff, 0xff])],
  ];
  for (const [what, block] of cases) {
    const d = new HpackDecoder();
    assert.throws(() => d.decode(block), HpackError, what);
    assert.throws(() => d.decode(Buffer.from([0x82])), /after an error/, what);
  }
});

test("huffman: padding must be at most 7 bits of 1s", () => {
  // "a" is 00011 (5 bits): 00011111 is "a" + 3 bits of padding.
  assert.equal(huffmanDecode(Buffer.from([0x1f])).toString(), "a");
  assert.throws(() => huffmanDecode(Buffer.from([0x1e])), HuffmanError); // padding 110
  assert.throws(() => huffmanDecode(Buffer.from([0x1f, 0xff])), HuffmanError); // 11 bits of padding
  assert.equal(huffmanDecode(Buffer.alloc(0)).length, 0);
});

test("the stateless encoder's output decodes to the same fields and adds nothing to the table", () => {
  const fields: HeaderField[] = [
    { name: ":method", value: "POST", sensitive: false },
    { name: ":path", value: "/runtime.v1.RuntimeService/Version", sensitive: false },
    { name: ":authority", value: "localhost", sensitive: false },
    { name: "content-type", value: "application/grpc", sensitive: false },
    { name: "authorization", value: "Bearer x", sensitive: true },
    { name: "x-long", value: "é".repeat(3) + "v".repeat(300), sensitive: false },
    { name: "x-empty", value: "", sensitive: false },
  ];
  const block = encodeHeaderBlock(fields);
  assert.equal(block[0], 0x83, ":method POST is the static entry 3");
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(block), fields);
  assert.equal(d.tableSize, 0);
});
