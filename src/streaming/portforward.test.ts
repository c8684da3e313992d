import { test } from "node:test";
import assert from "node:assert/strict";
import { checkPort, queryPorts } from "./portforward.js";

test("ports must be decimal 1..65535 and, when the request lists ports, one of them", () => {
  assert.equal(checkPort("8080", []), 8080);
  assert.equal(checkPort(undefined, []), "port header is required");
  assert.match(checkPort("0", []) as string, /between 1 and 65535/);
  assert.match(checkPort("65536", []) as string, /between 1 and 65535/);
  assert.match(checkPort("80a", []) as string, /invalid port "80a"/);
  assert.match(checkPort("81", [80]) as string, /port 81 was not requested/);
});

test("WebSocket ports come from port= or ports=, comma lists allowed, else the stored list", () => {
  assert.deepEqual(queryPorts(new URL("http://x/?port=80&port=81"), []), [80, 81]);
  assert.deepEqual(queryPorts(new URL("http://x/?ports=80,81"), []), [80, 81]);
  assert.deepEqual(queryPorts(new URL("http://x/"), [5000]), [5000]);
  assert.match(queryPorts(new URL("http://x/"), []) as string, /"port" is required/);
  assert.match(queryPorts(new URL("http://x/?ports=80,x"), []) as string, /invalid port/);
});
