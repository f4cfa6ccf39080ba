/**
 * Seeded randomness for fuzz specs: the same seed gives the same inputs, so a failure replays.
 */

/** mulberry32: a small 32-bit generator, numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `text` with 1 to `maxEdits` characters replaced, removed or inserted, each from `alphabet`. */
export function mutateText(text: string, r: () => number, alphabet: string, maxEdits: number): string {
  const chars = [...text];
  const n = 1 + Math.floor(r() * maxEdits);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(r() * chars.length);
    const op = r();
    const c = alphabet[Math.floor(r() * alphabet.length)];
    if (op < 0.4) chars[at] = c;
    else if (op < 0.7) chars.splice(at, 1);
    else chars.splice(at, 0, c);
  }
  return chars.join('');
}
