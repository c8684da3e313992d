import assert from "node:assert/strict";
import type { IncomingHttpHeaders } from "node:http";
import { test } from "node:test";
import { isCanceled, isUnavailable } from "../errors.js";
import { readBody, request } from "./client.js";
import { startServer } from "./testing/fixtures.js";

test("redirects are followed; Authorization is kept on the same host and dropped on another", async (t) => {
  const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
  const other = await startServer(t, (req, res) => {
    seen.push({ url: `other${req.url}`, headers: req.headers });
    res.end("from other");
  });
  const origin = await startServer(t, (req, res) => {
    seen.push({ url: `origin${req.url}`, headers: req.headers });
    if (req.url === "/a") return void res.writeHead(302, { location: "/b" }).end();
    if (req.url === "/b") return void res.writeHead(307, { location: `http://${other.host}/c` }).end();
    res.writeHead(404).end();
  });
  const res = await request(`http://${origin.host}/a`, { headers: { authorization: "Basic eDp5" } });
  assert.equal(res.status, 200);
  assert.equal(res.url, `http://${other.host}/c`);
  assert.equal((await readBody(res)).toString(), "from other");
  assert.deepEqual(seen.map((s) => [s.url, s.headers.authorization]), [
    ["origin/a", "Basic eDp5"],
    ["origin/b", "Basic eDp5"],
    ["other/c", undefined],
  ]);
});

test("redirect loops end with an error; refused connections are Unavailable; aborts are Canceled", async (t) => {
  const loop = await startServer(t, (_req, res) => void res.writeHead(302, { location: "/again" }).end());
  await assert.rejects(request(`http://${loop.host}/x`, { maxRedirects: 3 }), /more than 3 redirects/);
  await assert.rejects(request("http://127.0.0.1:1/"), isUnavailable);
  const silent = await startServer(t, () => {});
  await assert.rejects(request(`http://${silent.host}/`, { signal: AbortSignal.abort() }), isCanceled);
});
