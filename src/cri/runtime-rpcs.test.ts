import { test } from "node:test";
import assert from "node:assert/strict";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { ContainerFilterSchema, ContainerState, PodSandboxFilterSchema, PodSandboxState } from "../gen/runtime/v1/api_pb.js";
import { filterContainers, filterPods } from "./runtime-rpcs.js";
import type { ContainerRecord, SandboxRecord } from "./records.js";

const pod = (id: string, state: SandboxRecord["state"], labels: Record<string, string> = {}) => ({ id, state, labels }) as SandboxRecord;
const ctr = (id: string, sandboxId: string, state: ContainerRecord["state"], labels: Record<string, string> = {}) =>
  ({ id, sandboxId, state, labels }) as ContainerRecord;
const ids = (xs: { id: string }[]) => xs.map((x) => x.id);

const pods = [pod("aa11", "ready", { app: "web", tier: "fe" }), pod("aa22", "notready", { app: "web" }), pod("bb33", "ready"), pod("aa44", "creating", { app: "web" })];

test("filterPods: id prefix, state, label selector (all labels must match); pods being created never listed", () => {
  const f = (o: MessageInitShape<typeof PodSandboxFilterSchema>) => ids(filterPods(pods, create(PodSandboxFilterSchema, o)));
  assert.deepEqual(ids(filterPods(pods, undefined)), ["aa11", "aa22", "bb33"]);
  assert.deepEqual(f({}), ["aa11", "aa22", "bb33"]);
  assert.deepEqual(f({ id: "aa" }), ["aa11", "aa22"]);
  assert.deepEqual(f({ id: "bb33" }), ["bb33"]);
  assert.deepEqual(f({ id: "zz" }), []);
  assert.deepEqual(f({ state: { state: PodSandboxState.SANDBOX_READY } }), ["aa11", "bb33"]);
  assert.deepEqual(f({ state: { state: PodSandboxState.SANDBOX_NOTREADY } }), ["aa22"], "a creating pod is not NOTREADY-listed either");
  assert.deepEqual(f({ labelSelector: { app: "web" } }), ["aa11", "aa22"]);
  assert.deepEqual(f({ labelSelector: { app: "web", tier: "fe" } }), ["aa11"]);
  assert.deepEqual(f({ labelSelector: { app: "db" } }), []);
  assert.deepEqual(f({ id: "aa", state: { state: PodSandboxState.SANDBOX_READY }, labelSelector: { app: "web" } }), ["aa11"]);
});

test("filterContainers: id prefix, pod id prefix, state, label selector", () => {
  const cs = [ctr("c1a", "aa11", "running", { app: "web" }), ctr("c1b", "aa11", "exited"), ctr("c2a", "bb33", "created", { app: "web" }), ctr("d9", "bb33", "unknown")];
  const f = (o: MessageInitShape<typeof ContainerFilterSchema>) => ids(filterContainers(cs, create(ContainerFilterSchema, o)));
  assert.deepEqual(ids(filterContainers(cs, undefined)), ["c1a", "c1b", "c2a", "d9"]);
  assert.deepEqual(f({ id: "c1" }), ["c1a", "c1b"]);
  assert.deepEqual(f({ podSandboxId: "bb" }), ["c2a", "d9"]);
  assert.deepEqual(f({ podSandboxId: "aa11", id: "c1b" }), ["c1b"]);
  assert.deepEqual(f({ state: { state: ContainerState.CONTAINER_RUNNING } }), ["c1a"]);
  assert.deepEqual(f({ state: { state: ContainerState.CONTAINER_CREATED } }), ["c2a"]);
  assert.deepEqual(f({ state: { state: ContainerState.CONTAINER_UNKNOWN } }), ["d9"]);
  assert.deepEqual(f({ labelSelector: { app: "web" } }), ["c1a", "c2a"]);
  assert.deepEqual(f({ podSandboxId: "aa", labelSelector: { app: "web" }, state: { state: ContainerState.CONTAINER_EXITED } }), []);
});
