/**
 * Row ↔ domain helpers shared by the stores: JSON columns, booleans, validation of the values
 * SQLite cannot check for us. Internal to `metadata/`.
 */
import { internal, invalidArgument } from "../errors.js";

/** Parses a JSON column; a corrupt value is an Internal error naming the row, never a silent default. */
export function parseJson<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw internal(`${what}: stored JSON is corrupt`, err);
  }
}

export const toBit = (b: boolean): 0 | 1 => (b ? 1 : 0);
export const fromBit = (n: number): boolean => n !== 0;

/**
 * RFC 3339 UTC time with up to nanosecond precision, e.g. `2024-05-01T10:00:00.123456789Z`.
 * Only the `Z` form is accepted so that stored values compare correctly as strings.
 */
const ISO_NS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

export function checkTimestamp(value: string, what: string): void {
  if (!ISO_NS.test(value) || Number.isNaN(Date.parse(value.replace(/\.\d+Z$/, "Z")))) {
    throw invalidArgument(`${what}: "${value}" is not an RFC 3339 UTC timestamp`);
  }
}

/** Exit status as reported by the shim: a uint32. */
export function checkExitStatus(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw invalidArgument(`${what}: exit status ${value} is not a uint32`);
  }
}

/** A process id: a positive integer, or null while unknown. */
export function checkPid(value: number | null, what: string): void {
  if (value !== null && (!Number.isInteger(value) || value <= 0)) {
    throw invalidArgument(`${what}: pid ${value} is not a positive integer`);
  }
}

/** Returns `patch` without its `undefined` entries (an absent key means "leave unchanged"). */
export function definedOnly<T extends object>(patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as Partial<T>;
}
