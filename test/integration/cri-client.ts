/**
 * The independent CRI client of the tests (it stands in for kubelet): @grpc/grpc-js with the
 * .proto loaded at test time, sharing no code with skiff's server.
 */
import assert from "node:assert/strict";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const protoPath = path.resolve(import.meta.dirname, "../../proto/runtime/v1/api.proto");
const pkgDef = protoLoader.loadSync(protoPath, { keepCase: true, longs: String, enums: String, defaults: true });
const runtimeV1 = (grpc.loadPackageDefinition(pkgDef).runtime as grpc.GrpcObject).v1 as grpc.GrpcObject;
export const RuntimeClient = runtimeV1.RuntimeService as grpc.ServiceClientConstructor;
export const ImageClient = runtimeV1.ImageService as grpc.ServiceClientConstructor;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Reply = Record<string, any>;

/** Promisified unary call on a grpc-js client. */
export function call(client: grpc.Client, method: string, req: object): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    (client as any)[method](req, (err: grpc.ServiceError | null, res: Reply) => (err ? reject(err) : resolve(res)));
  });
}

/**
 * The status message as sent. grpc-js undoes the grpc-message percent-encoding with decodeURI,
 * which leaves reserved characters (":", "/", "?") encoded; grpc-go clients (kubelet, crictl)
 * decode them all.
 */
export function detailsOf(err: grpc.ServiceError): string {
  try {
    return decodeURIComponent(err.details);
  } catch {
    return err.details;
  }
}

export function rejectsWith(p: Promise<unknown>, code: grpc.status, details?: RegExp) {
  return assert.rejects(p, (err: grpc.ServiceError) => {
    assert.equal(err.code, code, `code ${err.code} (${detailsOf(err)})`);
    if (details) assert.match(detailsOf(err), details);
    return true;
  });
}

/** Runtime and image clients on a unix socket, with kubelet-like unlimited local message sizes. */
export function criClients(socket: string): { runtime: grpc.Client; image: grpc.Client; close(): void } {
  const opts = { "grpc.max_send_message_length": -1, "grpc.max_receive_message_length": -1 };
  const runtime = new RuntimeClient(`unix:${socket}`, grpc.credentials.createInsecure(), opts);
  const image = new ImageClient(`unix:${socket}`, grpc.credentials.createInsecure(), opts);
  return { runtime, image, close: () => (runtime.close(), image.close()) };
}
