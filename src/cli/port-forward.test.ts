import { test } from "node:test";
import assert from "node:assert/strict";
import * as http from "node:http";
import * as net from "node:net";
import { isInvalidArgument } from "../errors.js";
import { parsePortMapping, PortForwarder } from "./port-forward.js";
import { accept, offeredProtocols, negotiate } from "../streaming/ws/handshake.js";
import { WsConnection } from "../streaming/ws/connection.js";

test("parsePortMapping: crictl's [LOCAL:]REMOTE", () => {
  assert.deepEqual(parsePortMapping("80"), { local: 80, remote: 80 });
  assert.deepEqual(parsePortMapping("8080:80"), { local: 8080, remote: 80 });
  assert.deepEqual(parsePortMapping(":80"), { local: 0, remote: 80 });
  for (const bad of ["", "x", "80:", "0", "70000", "1:2:3", "-1"]) assert.throws(() => parsePortMapping(bad), isInvalidArgument, bad);
});

test("PortForwarder: each local connection gets its own URL and WebSocket; port prefixes are not data; errors are reported", async (t) => {
  // A stand-in streaming server speaking portforward.k8s.io: echoes data in upper case.
  const urls: string[] = [];
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  server.on("upgrade", (req, socket) => {
    const proto = negotiate(offeredProtocols(req), ["portforward.k8s.io"], false)!;
    accept(req, socket, proto);
    const ws = new WsConnection(socket, proto);
    const port = Number(new URL(req.url!, "http://x").searchParams.get("ports"));
    const le = Buffer.alloc(2);
    le.writeUInt16LE(port);
    void ws.send(Buffer.concat([Buffer.from([0]), le]));
    void ws.send(Buffer.concat([Buffer.from([1]), le]));
    ws.on("message", (m: Buffer) => {
      const text = m.subarray(1).toString();
      if (text === "fail") void ws.send(Buffer.concat([Buffer.from([1]), Buffer.from("boom")])).then(() => ws.close(1000));
      else void ws.send(Buffer.concat([Buffer.from([0]), Buffer.from(text.toUpperCase())]));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const errors: string[] = [];
  const fwd = new PortForwarder({
    url: async (remote) => {
      urls.push(`${base}/portforward/t${urls.length}`);
      return urls.at(-1)!.concat(remote === 81 ? "" : "");
    },
    onError: (m) => errors.push(m),
  });
  t.after(async () => {
    await fwd.close();
    await new Promise((r) => server.close(r));
  });
  const [m] = await fwd.listen([{ local: 0, remote: 81 }]);
  assert.ok(m!.local > 0);
  const talk = (msg: string) =>
    new Promise<string>((resolve, reject) => {
      const s = net.connect(m!.local, "127.0.0.1", () => s.write(msg));
      s.once("data", (d) => (resolve(d.toString()), s.destroy()));
      s.once("error", reject);
    });
  assert.deepEqual(await Promise.all([talk("one"), talk("two"), talk("three")]), ["ONE", "TWO", "THREE"]);
  assert.equal(new Set(urls).size, 3, "a URL per connection (they are single-use)");
  await new Promise<void>((resolve) => {
    const s = net.connect(m!.local, "127.0.0.1", () => s.write("fail"));
    s.once("close", () => resolve());
  });
  assert.deepEqual(errors, ["port 81: boom"]);
});
