/** CRI Version: names skiff and the CRI API version it serves. */
import { readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { type VersionRequest, type VersionResponse, VersionResponseSchema } from "../gen/runtime/v1/api_pb.js";

/** CRI API version this server speaks (the `version` field of the response). */
export const CRI_VERSION = "0.1.0";
export const RUNTIME_NAME = "skiff";
export const RUNTIME_API_VERSION = "v1";

let runtimeVersion: string | undefined;

/** skiff's own version, from package.json (two levels up from both src/cri and dist/cri). */
export function skiffVersion(): string {
  runtimeVersion ??= (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string })
    .version;
  return runtimeVersion;
}

export function version(_req: VersionRequest): VersionResponse {
  return create(VersionResponseSchema, {
    version: CRI_VERSION,
    runtimeName: RUNTIME_NAME,
    runtimeVersion: skiffVersion(),
    runtimeApiVersion: RUNTIME_API_VERSION,
  });
}
