/** Authorizer with a token given per pull (CRI AuthConfig registry/identity token). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { isFailedPrecondition } from "../errors.js";
import { Authorizer } from "./auth.js";
import type { Endpoint } from "./hosts.js";
import { startServer } from "./testing/fixtures.js";

test("a token is sent as Bearer on the first request; a 401 then fails without a challenge round", async (t) => {
  const seen: (string | undefined)[] = [];
  const { host } = await startServer(t, (req, res) => {
    seen.push(req.headers.authorization);
    if (req.headers.authorization === "Bearer good") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok");
      return;
    }
    res.writeHead(401, { "www-authenticate": 'Basic realm="x"' });
    res.end();
  });
  const ep = (token: string): Endpoint => ({ host, baseUrl: `http://${host}`, mirror: false, token });
  const auth = new Authorizer();
  const res = await auth.fetch(ep("good"), "app", "/v2/app/manifests/1");
  assert.equal(res.status, 200);
  res.body.resume();
  await assert.rejects(
    auth.fetch(ep("bad"), "app", "/v2/app/manifests/1"),
    (e: Error) => isFailedPrecondition(e) && /^unauthorized: registry .* repository app: bearer token rejected/.test(e.message),
  );
  assert.deepEqual(seen, ["Bearer good", "Bearer bad"]);
});
