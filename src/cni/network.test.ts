/** CniNetwork against fake plugins (shell scripts): what each plugin is given, and in which order. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { CniNetwork, toStatus } from "./network.js";

/** A plugin that records its env and stdin, and answers ADD with prevResult plus one IP. */
async function recorder(dir: string, name: string, ip: string): Promise<void> {
  const log = path.join(dir, "calls.jsonl");
  const script = `#!/bin/sh
in=$(cat)
printf '{"plugin":"%s","cmd":"%s","id":"%s","netns":"%s","if":"%s","args":"%s","path":"%s","stdin":%s}\\n' \\
  ${name} "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_IFNAME" "$CNI_ARGS" "$CNI_PATH" "$in" >> ${log}
[ "$CNI_COMMAND" = ADD ] || exit 0
echo '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"'"$CNI_NETNS"'"}],"ips":[{"address":"${ip}/24","interface":0}],"routes":[{"dst":"0.0.0.0/0"}]}'
`;
  await writeFile(path.join(dir, name), script);
  await chmod(path.join(dir, name), 0o755);
}

interface Call {
  plugin: string;
  cmd: string;
  id: string;
  netns: string;
  if: string;
  args: string;
  path: string;
  stdin: Record<string, unknown>;
}

test("the chain gets the CNI environment, prevResult and runtimeConfig; DEL runs in reverse", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "skiff-cni-net-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await recorder(dir, "one", "10.9.0.2");
  await recorder(dir, "two", "10.9.0.3");
  const network = new CniNetwork({
    conf: { cniVersion: "1.0.0", name: "net", plugins: [{ type: "one", x: 1 }, { type: "two", capabilities: { portMappings: true } }] },
    binDirs: [dir],
    loopback: false,
    cacheDir: path.join(dir, "cache"),
  });
  const nsPath = path.join(dir, "fake-ns"); // DEL passes "" for a namespace that does not exist
  await writeFile(nsPath, "");
  const pm = [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }];
  const st = await network.setUp("pod1", nsPath, { portMappings: pm, args: { K8S_POD_NAME: "p" } });
  assert.deepEqual(st.ips, ["10.9.0.3"]);
  await rm(nsPath);
  await network.tearDown("pod1", nsPath);

  const calls = (await readFile(path.join(dir, "calls.jsonl"), "utf8"))
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Call);
  assert.deepEqual(
    calls.map((c) => `${c.cmd} ${c.plugin}`),
    ["ADD one", "ADD two", "DEL two", "DEL one"],
  );
  const [add1, add2, del2] = calls;
  assert.equal(add1!.id, "pod1");
  assert.equal(add1!.if, "eth0");
  assert.equal(add1!.netns, nsPath);
  assert.equal(add1!.args, "IgnoreUnknown=1;K8S_POD_NAME=p");
  assert.equal(add1!.path, dir);
  assert.deepEqual(add1!.stdin, { type: "one", x: 1, cniVersion: "1.0.0", name: "net" });
  assert.equal((add2!.stdin.prevResult as { ips: { address: string }[] }).ips[0]!.address, "10.9.0.2/24");
  assert.deepEqual(add2!.stdin.runtimeConfig, { portMappings: pm });
  // DEL: the final ADD result as prevResult, the port mappings from setUp, an empty netns.
  assert.equal((del2!.stdin.prevResult as { ips: { address: string }[] }).ips[0]!.address, "10.9.0.3/24");
  assert.deepEqual(del2!.stdin.runtimeConfig, { portMappings: pm });
  assert.equal(del2!.netns, "");
});

test("toStatus keeps the pod interface's addresses and strips prefixes", () => {
  const st = toStatus(
    {
      cniVersion: "1.0.0",
      interfaces: [{ name: "cni0" }, { name: "veth1" }, { name: "eth0", sandbox: "/var/run/netns/x" }],
      ips: [
        { address: "10.0.0.1/24", interface: 0 },
        { address: "10.0.0.5/24", interface: 2 },
        { address: "fd00::5/64", interface: 2 },
      ],
    },
    "eth0",
  );
  assert.deepEqual(st.ips, ["10.0.0.5", "fd00::5"]);
  assert.deepEqual(st.routes, []);
});
