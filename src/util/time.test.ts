import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { isZeroTimestamp, rfc3339ToTimestamp, timestampToRfc3339 } from "./time.js";

test("nanosecond timestamps survive a round trip", () => {
  const ts = create(TimestampSchema, { seconds: 1_795_000_000n, nanos: 123_456_789 });
  const s = timestampToRfc3339(ts);
  assert.match(s, /\.123456789Z$/);
  const back = rfc3339ToTimestamp(s);
  assert.equal(back.seconds, ts.seconds);
  assert.equal(back.nanos, ts.nanos);
  assert.equal(rfc3339ToTimestamp("2026-01-01T00:00:00.5Z").nanos, 500_000_000);
  assert.equal(isZeroTimestamp(create(TimestampSchema, {})), true);
  assert.equal(isZeroTimestamp(ts), false);
  assert.equal(isZeroTimestamp(create(TimestampSchema, { seconds: -62135596800n })), true, "Go's zero time");
});
