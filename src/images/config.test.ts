import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isInvalidArgument } from "../errors.js";
import { parseImageConfig } from "./config.js";

const diff = `sha256:${"1".repeat(64)}`;

describe("parseImageConfig", () => {
  test("maps every field of a Docker/OCI config", () => {
    const c = parseImageConfig(
      JSON.stringify({
        architecture: "arm64",
        variant: "v8",
        os: "linux",
        created: "2024-01-01T00:00:00Z",
        config: {
          Entrypoint: ["/docker-entrypoint.sh"],
          Cmd: ["nginx", "-g", "daemon off;"],
          Env: ["PATH=/usr/bin", "A=b=c"],
          User: "101:101",
          WorkingDir: "/srv",
          Volumes: { "/var/cache": {}, "/data": {} },
          StopSignal: "SIGQUIT",
          Labels: { maintainer: "me" },
          ExposedPorts: { "80/tcp": {}, "443/tcp": {} },
        },
        rootfs: { type: "layers", diff_ids: [diff] },
      }),
    );
    assert.deepEqual(c, {
      os: "linux",
      architecture: "arm64",
      variant: "v8",
      entrypoint: ["/docker-entrypoint.sh"],
      cmd: ["nginx", "-g", "daemon off;"],
      env: ["PATH=/usr/bin", "A=b=c"],
      user: "101:101",
      workingDir: "/srv",
      volumes: ["/data", "/var/cache"],
      stopSignal: "SIGQUIT",
      labels: { maintainer: "me" },
      exposedPorts: ["443/tcp", "80/tcp"],
      diffIds: [diff],
      created: "2024-01-01T00:00:00Z",
    });
  });

  test("absent and null fields become empty values", () => {
    const c = parseImageConfig(Buffer.from('{"os":"linux","config":{"Cmd":null,"Labels":null}}'));
    assert.deepEqual([c.cmd, c.entrypoint, c.env, c.labels, c.diffIds, c.user], [[], [], [], {}, [], ""]);
  });

  test("bad JSON or mistyped fields are InvalidArgument", () => {
    for (const bad of [
      "{not json",
      "[]",
      '{"config":{"Cmd":"sh"}}',
      '{"config":{"Env":[1]}}',
      '{"config":{"Labels":{"a":1}}}',
      '{"rootfs":{"type":"layers","diff_ids":["md5:x"]}}',
      '{"rootfs":{"type":"other"}}',
    ]) {
      assert.throws(() => parseImageConfig(bad), isInvalidArgument, bad);
    }
  });
});
