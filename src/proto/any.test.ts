import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create, createRegistry, fromBinary, toBinary } from "@bufbuild/protobuf";
import { AnySchema, anyPack } from "@bufbuild/protobuf/wkt";
import { isInvalidArgument } from "../errors.js";
import { TaskExitSchema, TaskOOMSchema } from "../gen/containerd/events/task_pb.js";
import { OptionsSchema } from "../gen/containerd/runc/options/oci_pb.js";
import {
  anyIs,
  OCI_LINUX_RESOURCES_TYPE_URL,
  OCI_PROCESS_TYPE_URL,
  OCI_SPEC_TYPE_URL,
  packAny,
  packJsonAny,
  typeNameOf,
  unpackAny,
  unpackJsonAny,
} from "./any.js";

describe("packAny", () => {
  test("writes the bare message name as type URL", () => {
    const any = packAny(OptionsSchema, create(OptionsSchema, { binaryName: "runc" }));
    assert.equal(any.typeUrl, "containerd.runc.v1.Options");
  });

  test("encodes byte-for-byte like containerd 1.6 (Any{type_url=1, value=2})", () => {
    const opts = create(OptionsSchema, { binaryName: "runc", systemdCgroup: true });
    const bytes = toBinary(AnySchema, packAny(OptionsSchema, opts));
    const name = new TextEncoder().encode("containerd.runc.v1.Options");
    // Options: field 6 (string) "runc", field 9 (bool) true.
    const inner = [0x32, 4, ...new TextEncoder().encode("runc"), 0x48, 1];
    const want = new Uint8Array([0x0a, name.length, ...name, 0x12, inner.length, ...inner]);
    assert.deepEqual(bytes, want);
  });
});

describe("unpackAny", () => {
  const exit = create(TaskExitSchema, { containerId: "c1", id: "c1", pid: 42, exitStatus: 3 });

  test("round-trips with a single schema", () => {
    const got = unpackAny(packAny(TaskExitSchema, exit), TaskExitSchema);
    assert.equal(got?.pid, 42);
    assert.equal(got?.exitStatus, 3);
  });

  test("accepts type.googleapis.com/ prefixed URLs", () => {
    const prefixed = anyPack(TaskExitSchema, exit);
    assert.equal(prefixed.typeUrl, "type.googleapis.com/containerd.events.TaskExit");
    assert.equal(unpackAny(prefixed, TaskExitSchema)?.containerId, "c1");
  });

  test("returns undefined for another type, an empty or a missing Any", () => {
    assert.equal(unpackAny(packAny(TaskExitSchema, exit), TaskOOMSchema), undefined);
    assert.equal(unpackAny(create(AnySchema), TaskExitSchema), undefined);
    assert.equal(unpackAny(undefined, TaskExitSchema), undefined);
  });

  test("resolves through a registry or a schema list", () => {
    const any = packAny(TaskExitSchema, exit);
    const fromRegistry = unpackAny(any, createRegistry(TaskOOMSchema, TaskExitSchema));
    assert.equal(fromRegistry?.$typeName, "containerd.events.TaskExit");
    const fromList = unpackAny(any, [TaskOOMSchema, TaskExitSchema]);
    assert.equal(fromList?.$typeName, "containerd.events.TaskExit");
    assert.equal(unpackAny(any, [TaskOOMSchema]), undefined);
    assert.equal(unpackAny(packJsonAny(OCI_PROCESS_TYPE_URL, {}), [TaskExitSchema]), undefined);
  });

  test("malformed bytes throw InvalidArgument", () => {
    const bad = create(AnySchema, { typeUrl: "containerd.events.TaskExit", value: new Uint8Array([0x0a, 0xff]) });
    assert.throws(() => unpackAny(bad, TaskExitSchema), isInvalidArgument);
  });
});

describe("anyIs / typeNameOf", () => {
  test("match bare and prefixed URLs by schema or name", () => {
    const any = packAny(TaskOOMSchema, create(TaskOOMSchema, { containerId: "x" }));
    assert.ok(anyIs(any, TaskOOMSchema));
    assert.ok(anyIs(any, "containerd.events.TaskOOM"));
    assert.ok(anyIs(anyPack(TaskOOMSchema, create(TaskOOMSchema)), TaskOOMSchema));
    assert.ok(!anyIs(any, TaskExitSchema));
    assert.ok(!anyIs(undefined, TaskExitSchema));
    assert.ok(!anyIs(create(AnySchema), TaskExitSchema));
    assert.equal(typeNameOf("a/b/c.D"), "c.D");
    assert.equal(typeNameOf("c.D"), "c.D");
  });
});

describe("JSON Anys", () => {
  test("URLs follow containerd's typeurl registration", () => {
    assert.equal(OCI_PROCESS_TYPE_URL, "types.containerd.io/opencontainers/runtime-spec/1/Process");
    assert.equal(OCI_LINUX_RESOURCES_TYPE_URL, "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources");
    assert.equal(OCI_SPEC_TYPE_URL, "types.containerd.io/opencontainers/runtime-spec/1/Spec");
  });

  test("round-trip through the wire", () => {
    const proc = { args: ["sh", "-c", "echo hi"], cwd: "/", user: { uid: 0, gid: 0 }, noNewPrivileges: true };
    const any = packJsonAny(OCI_PROCESS_TYPE_URL, proc);
    assert.equal(new TextDecoder().decode(any.value), JSON.stringify(proc));
    const decoded = fromBinary(AnySchema, toBinary(AnySchema, any));
    assert.deepEqual(unpackJsonAny(decoded, OCI_PROCESS_TYPE_URL), proc);
    assert.deepEqual(unpackJsonAny(decoded), proc);
  });

  test("wrong URL, empty Any, bad JSON or non-JSON value throw InvalidArgument", () => {
    const any = packJsonAny(OCI_LINUX_RESOURCES_TYPE_URL, { cpu: { shares: 2 } });
    assert.throws(() => unpackJsonAny(any, OCI_PROCESS_TYPE_URL), isInvalidArgument);
    assert.throws(() => unpackJsonAny(undefined), isInvalidArgument);
    const bad = create(AnySchema, { typeUrl: OCI_PROCESS_TYPE_URL, value: new TextEncoder().encode("{") });
    assert.throws(() => unpackJsonAny(bad), isInvalidArgument);
    assert.throws(() => packJsonAny(OCI_PROCESS_TYPE_URL, undefined), isInvalidArgument);
    assert.throws(() => packJsonAny("", {}), isInvalidArgument);
  });
});
