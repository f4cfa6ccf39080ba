/**
 * The ports this process holds open for a running adapter — serial device paths and TCP listen addresses —
 * each with who holds it.
 *
 * Why it exists: the plugin switches manifests by probing the new manifest's adapter while the old one
 * still runs, and stops the old one only once the probe passed (src/plugin/adapter-host.ts `switchNow`).
 * serialport locks a port it opens, and a TCP address is listened on by one server at a time, so a probe
 * that really opened a port the running adapter holds would always fail, and a manifest on the same port
 * could never replace the running one. A port held here is known to work: a probe takes it as working
 * instead of opening it. A port another program holds is not here: the probe opens it, fails, and names it.
 *
 * Adapters record a port for as long as it is open for their run (not a probe's brief open), and call the
 * release function once it is closed. The same port may be held twice (a reopen racing a close); it stays
 * held until every holder released it.
 */

/** A serial device path (`/dev/ttyS0`, `COM3`), or the address a TCP server listens on. */
export type HeldPort = { serial: string } | { tcp: { host: string; port: number } };

interface Holding {
  port: HeldPort;
  /** Who, in messages: "printer-tap options.listen". */
  holder: string;
}

const holdings = new Set<Holding>();

/**
 * Records that `holder` has `port` open; returns the function that releases it (call it once the port is
 * closed; calling it again does nothing).
 */
export function holdPort(port: HeldPort, holder: string): () => void {
  const holding: Holding = { port, holder };
  holdings.add(holding);
  return () => void holdings.delete(holding);
}

/** Who in this process holds `port` (or a port it overlaps), or undefined when nothing here does. */
export function portHolder(port: HeldPort): string | undefined {
  for (const h of holdings) if (samePort(h.port, port)) return h.holder;
  return undefined;
}

/**
 * Serial: the same device (COM names in any case, with or without `\\.\`). TCP: the same port on the same
 * host, or on a wildcard host (0.0.0.0, ::) on either side, since such a listener takes the port on every
 * address (a listen on it fails while the other runs). Port 0 is never the same: each listen on it gets a
 * port of its own.
 */
function samePort(a: HeldPort, b: HeldPort): boolean {
  if ('serial' in a && 'serial' in b) return serialKey(a.serial) === serialKey(b.serial);
  if ('tcp' in a && 'tcp' in b) {
    if (a.tcp.port === 0 || a.tcp.port !== b.tcp.port) return false;
    const [ha, hb] = [hostKey(a.tcp.host), hostKey(b.tcp.host)];
    return ha === hb || WILDCARD_HOSTS.has(ha) || WILDCARD_HOSTS.has(hb);
  }
  return false;
}

const WILDCARD_HOSTS = new Set(['', '0.0.0.0', '::', '::0']);

function serialKey(path: string): string {
  const com = /^(?:\\\\\.\\)?(COM\d+)$/i.exec(path);
  return com ? com[1].toUpperCase() : path;
}

function hostKey(host: string): string {
  return host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
}
