/**
 * ttrpc (containerd/ttrpc wire protocol), unary calls only: a multiplexing client, a server
 * with concurrent handlers, and a typed helper for @bufbuild/protobuf messages.
 */
export { TtrpcClient, NAMESPACE_METADATA_KEY, socketPathOf, type CallOptions, type ConnectOptions } from "./client.js";
export { TtrpcServer, type ServerOptions, type ListenOptions } from "./server.js";
export type { CallContext, Handler } from "./server-conn.js";
export { TtrpcStatusError, errorFromStatus, statusFromError, type RpcStatus, type AnyDetail } from "./status.js";
export { unaryCall } from "./unary.js";
export { MESSAGE_HEADER_LENGTH, MESSAGE_LENGTH_MAX, MessageType } from "./frame.js";
