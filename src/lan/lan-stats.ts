/**
 * Counters a support engineer reads to answer "what is the LAN doing?": every dropped datagram by reason,
 * plus traffic totals. Exposed by the apps' status pages and `payconnect lan` tools.
 */
export const DROP_REASONS = [
  'bad-seal',
  'unknown-key',
  'replay',
  'skew',
  'oversize',
  'malformed',
  'not-for-me',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export interface LanStats {
  datagramsIn: number;
  datagramsOut: number;
  messagesSent: number;
  retransmissions: number;
  processed: number;
  duplicates: number;
  acked: number;
  expired: number;
  handlerErrors: number;
  /** Messages of a type nothing here handles: answered `unhandled`, not acknowledged. */
  unhandled: number;
  dropped: Record<DropReason, number>;
}

export function emptyLanStats(): LanStats {
  return {
    datagramsIn: 0,
    datagramsOut: 0,
    messagesSent: 0,
    retransmissions: 0,
    processed: 0,
    duplicates: 0,
    acked: 0,
    expired: 0,
    handlerErrors: 0,
    unhandled: 0,
    dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>,
  };
}

/** Maps a ProtocolError code from the codec to the drop reason it is counted under. */
export function dropReasonOf(code: string): DropReason {
  switch (code) {
    case 'lan.bad_seal':
      return 'bad-seal';
    case 'lan.unknown_key':
      return 'unknown-key';
    case 'lan.oversize':
      return 'oversize';
    default:
      return 'malformed';
  }
}
