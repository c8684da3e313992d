/**
 * HPACK's static Huffman code (RFC 7541, Appendix B), decode side only: skiff re-encodes header
 * blocks without Huffman coding, so it never needs the encoder.
 *
 * The code is canonical: sorted by code length, then by symbol, each code is the previous one
 * plus one, shifted left by the growth in length. So the bit length of each of the 257 symbols
 * (0–255 and EOS = 256) is all it takes to rebuild every code; the lengths are kept here as one
 * character each, 'A' meaning 5 bits, 'B' 6 bits and so on up to 'Z' for 30 bits.
 */

const LENGTHS =
  "ISXXXXXXXTZXXZXXXXXXXXZXXXXXXXXXBFFHIBDGFFDGDBBBAAABBBBBBBCDKBHFIBCCCCCCCCCCCCCCCCCCCCCCDCDIOIJB" +
  "KABABABBBACCBBBABCBAABCCCCCKGJIXPRPPRRRSRSSSSSTSTTRSTSSSSQRSRSSTRQPRRSSQSRRTQRSSQQRQSRSSPRRRSRRSVV" +
  "PORSRUVVVWWVTUOQVWWVWTQQVVXWWWPTPQRQQSRRUUTTVSVWVVWWWWWXWWWWWVZ";

export const EOS = 256;

/** Bit length of each symbol's code. */
export const CODE_LENGTHS: readonly number[] = Array.from(LENGTHS, (c) => c.charCodeAt(0) - 65 + 5);

/** Each symbol's code, right-aligned in its bit length. */
export const CODES: readonly number[] = (() => {
  const order = CODE_LENGTHS.map((_, s) => s).sort((a, b) => CODE_LENGTHS[a]! - CODE_LENGTHS[b]! || a - b);
  const codes = new Array<number>(CODE_LENGTHS.length);
  let code = 0;
  let len = CODE_LENGTHS[order[0]!]!;
  order.forEach((sym, i) => {
    const l = CODE_LENGTHS[sym]!;
    if (i > 0) code = (code + 1) * 2 ** (l - len);
    len = l;
    codes[sym] = code;
  });
  return codes;
})();

/**
 * The decoding tree as a flat array: node n has children at [2n] (bit 0) and [2n+1] (bit 1);
 * a child ≥ 0 is another node, a child < 0 is the leaf of symbol −child−1.
 */
const TREE: Int32Array = (() => {
  const tree = new Int32Array(2 * 2 * CODES.length); // a full binary tree of 257 leaves has 256 inner nodes
  let nodes = 1;
  for (let sym = 0; sym < CODES.length; sym++) {
    const len = CODE_LENGTHS[sym]!;
    const code = CODES[sym]!;
    let node = 0;
    for (let bit = len - 1; bit >= 0; bit--) {
      const slot = 2 * node + (Math.floor(code / 2 ** bit) & 1);
      if (bit === 0) {
        tree[slot] = -sym - 1;
      } else {
        if (tree[slot] === 0) tree[slot] = nodes++;
        node = tree[slot]!;
      }
    }
  }
  return tree;
})();

export class HuffmanError extends Error {
  override name = "HuffmanError";
}

/**
 * Decodes a Huffman-coded string literal into its octets. Throws HuffmanError for what RFC 7541
 * §5.2 calls a decoding error: an EOS symbol in the data, or padding longer than 7 bits or not
 * made of the EOS code's leading 1 bits.
 */
export function huffmanDecode(data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(Math.ceil((data.length * 8) / 5));
  let n = 0;
  let node = 0;
  // Bits consumed since the last complete symbol, and whether they were all 1s (valid padding).
  let pending = 0;
  let allOnes = true;
  for (const byte of data) {
    for (let bit = 7; bit >= 0; bit--) {
      const b = (byte >> bit) & 1;
      const next = TREE[2 * node + b]!;
      pending++;
      allOnes &&= b === 1;
      if (next < 0) {
        const sym = -next - 1;
        if (sym === EOS) throw new HuffmanError("huffman: EOS symbol in a string literal");
        out[n++] = sym;
        node = 0;
        pending = 0;
        allOnes = true;
      } else {
        node = next;
      }
    }
  }
  if (pending > 7 || !allOnes) throw new HuffmanError("huffman: invalid padding at the end of a string literal");
  return out.subarray(0, n);
}
