/**
 * Sets `key` to `value` as the newest entry of `map` (moved to the end if it was there), then drops the
 * oldest entries, in insertion order, while the map holds more than `limit`. For the caches and histories
 * that must never grow with a shop's traffic: the journals' compiled statements, the unit's latest
 * attempts, the printer's recently printed orders.
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, limit: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > limit) map.delete(map.keys().next().value as K);
}
