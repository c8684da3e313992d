/**
 * Hand-written protobuf codec for the few ttrpc envelope messages (containerd/ttrpc
 * request.proto). No generated code: these shapes are frozen by the wire protocol.
 *
 *   Request  { string service = 1; string method = 2; bytes payload = 3;
 *              int64 timeout_nano = 4; repeated KeyValue metadata = 5; }
 *   KeyValue { string key = 1; string value = 2; }
 *   Response { google.rpc.Status status = 1; bytes payload = 2; }
 *   Status   { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; }
 *   Any      { string type_url = 1; bytes value = 2; }
 *
 * Decoders skip unknown fields (and known fields with an unexpected wire type, as protobuf-go
 * does) and throw a plain Error on malformed input; callers map that to a status.
 * Decoded `bytes` fields are copies, never views into the frame.
 */
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import type { AnyDetail, RpcStatus } from "./status.js";

export interface KeyValue {
  key: string;
  value: string;
}

export interface TtrpcRequest {
  service: string;
  method: string;
  payload: Uint8Array;
  /** Nanoseconds; 0 means no deadline. */
  timeoutNano: number;
  metadata: KeyValue[];
}

export interface TtrpcResponse {
  /** Absent on the wire means OK. */
  status: RpcStatus | undefined;
  payload: Uint8Array;
}

export function encodeRequest(req: TtrpcRequest): Uint8Array {
  const w = new BinaryWriter();
  if (req.service !== "") w.tag(1, WireType.LengthDelimited).string(req.service);
  if (req.method !== "") w.tag(2, WireType.LengthDelimited).string(req.method);
  if (req.payload.length > 0) w.tag(3, WireType.LengthDelimited).bytes(req.payload);
  if (req.timeoutNano !== 0) w.tag(4, WireType.Varint).int64(Math.trunc(req.timeoutNano));
  for (const kv of req.metadata) {
    w.tag(5, WireType.LengthDelimited).fork();
    if (kv.key !== "") w.tag(1, WireType.LengthDelimited).string(kv.key);
    if (kv.value !== "") w.tag(2, WireType.LengthDelimited).string(kv.value);
    w.join();
  }
  return w.finish();
}

export function decodeRequest(buf: Uint8Array): TtrpcRequest {
  const req: TtrpcRequest = { service: "", method: "", payload: new Uint8Array(0), timeoutNano: 0, metadata: [] };
  decodeFields(buf, (r, field, wt) => {
    if (field === 1 && wt === WireType.LengthDelimited) req.service = r.string();
    else if (field === 2 && wt === WireType.LengthDelimited) req.method = r.string();
    else if (field === 3 && wt === WireType.LengthDelimited) req.payload = r.bytes().slice();
    else if (field === 4 && wt === WireType.Varint) req.timeoutNano = Number(r.int64());
    else if (field === 5 && wt === WireType.LengthDelimited) req.metadata.push(decodeKeyValue(r.bytes()));
    else return false;
    return true;
  });
  return req;
}

export function encodeResponse(res: TtrpcResponse): Uint8Array {
  const w = new BinaryWriter();
  if (res.status !== undefined) {
    w.tag(1, WireType.LengthDelimited).fork();
    encodeStatus(w, res.status);
    w.join();
  }
  if (res.payload.length > 0) w.tag(2, WireType.LengthDelimited).bytes(res.payload);
  return w.finish();
}

export function decodeResponse(buf: Uint8Array): TtrpcResponse {
  const res: TtrpcResponse = { status: undefined, payload: new Uint8Array(0) };
  decodeFields(buf, (r, field, wt) => {
    // A repeated embedded field merges in protobuf; the last Status wins here, which is what a
    // well-formed peer (one Status at most) never notices.
    if (field === 1 && wt === WireType.LengthDelimited) res.status = decodeStatus(r.bytes());
    else if (field === 2 && wt === WireType.LengthDelimited) res.payload = r.bytes().slice();
    else return false;
    return true;
  });
  return res;
}

function encodeStatus(w: BinaryWriter, s: RpcStatus): void {
  if (s.code !== 0) w.tag(1, WireType.Varint).int32(s.code);
  if (s.message !== "") w.tag(2, WireType.LengthDelimited).string(s.message);
  for (const d of s.details) {
    w.tag(3, WireType.LengthDelimited).fork();
    if (d.typeUrl !== "") w.tag(1, WireType.LengthDelimited).string(d.typeUrl);
    if (d.value.length > 0) w.tag(2, WireType.LengthDelimited).bytes(d.value);
    w.join();
  }
}

function decodeStatus(buf: Uint8Array): RpcStatus {
  const s: RpcStatus = { code: 0, message: "", details: [] };
  decodeFields(buf, (r, field, wt) => {
    if (field === 1 && wt === WireType.Varint) s.code = r.int32();
    else if (field === 2 && wt === WireType.LengthDelimited) s.message = r.string();
    else if (field === 3 && wt === WireType.LengthDelimited) s.details.push(decodeAny(r.bytes()));
    else return false;
    return true;
  });
  return s;
}

function decodeKeyValue(buf: Uint8Array): KeyValue {
  const kv: KeyValue = { key: "", value: "" };
  decodeFields(buf, (r, field, wt) => {
    if (field === 1 && wt === WireType.LengthDelimited) kv.key = r.string();
    else if (field === 2 && wt === WireType.LengthDelimited) kv.value = r.string();
    else return false;
    return true;
  });
  return kv;
}

function decodeAny(buf: Uint8Array): AnyDetail {
  const a: AnyDetail = { typeUrl: "", value: new Uint8Array(0) };
  decodeFields(buf, (r, field, wt) => {
    if (field === 1 && wt === WireType.LengthDelimited) a.typeUrl = r.string();
    else if (field === 2 && wt === WireType.LengthDelimited) a.value = r.bytes().slice();
    else return false;
    return true;
  });
  return a;
}

/**
 * Reads every field of one message. `onField` reads the value and returns true, or returns
 * false to have it skipped. Throws on truncation, bad tags and end-group mismatches.
 */
function decodeFields(buf: Uint8Array, onField: (r: BinaryReader, field: number, wt: WireType) => boolean): void {
  const r = new BinaryReader(buf);
  while (r.pos < r.len) {
    const [field, wt] = r.tag();
    if (wt === WireType.EndGroup) throw new Error(`protobuf: unexpected end group tag for field ${field}`);
    if (!onField(r, field, wt)) r.skip(wt, field);
    if (r.pos > r.len) throw new Error("protobuf: premature end of message");
  }
}
