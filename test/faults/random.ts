/**
 * A seeded pseudo-random source for fault schedules, so a failing run is repeated exactly from
 * the seed it printed. mulberry32: 32-bit state, good enough to pick kill points and victims.
 */

export interface Rng {
  readonly seed: number;
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number;
  /** The items in a random order (a new array). */
  shuffle<T>(items: readonly T[]): T[];
}

/** A generator from `seed` (default: SKIFF_FAULT_SEED from the environment, else random). */
export function makeRng(seed?: number): Rng {
  const s0 = seed ?? (process.env.SKIFF_FAULT_SEED ? Number(process.env.SKIFF_FAULT_SEED) : Math.floor(Math.random() * 2 ** 31));
  if (!Number.isInteger(s0)) throw new Error(`fault seed must be an integer, got ${s0}`);
  let a = s0 >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    seed: s0,
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    shuffle<T>(items: readonly T[]): T[] {
      const out = [...items];
      for (let i = out.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [out[i], out[j]] = [out[j]!, out[i]!];
      }
      return out;
    },
  };
}
