/**
 * The contract between a customer-display protocol decoder and the serial-display adapter (issue 11).
 * Every protocol (epson, cd5220, aedex, utc, logic-controls, led8) decodes bytes into the same model: a
 * virtual screen (lines × columns, cursor, scroll mode) plus lamp state. The amount rule reads the model,
 * never the raw bytes, so one rule works for every display.
 *
 * This file fixes the shapes both sides code against; the decoders and the model's behaviour live beside it.
 */

export type DisplayProtocol = 'epson' | 'cd5220' | 'aedex' | 'utc' | 'logic-controls' | 'led8';

/** The lamps of Chinese 8-digit LED displays: 单价 unit price, 总计 total, 收款 tendered, 找零 change. */
export type DisplayLamp = 'price' | 'total' | 'tendered' | 'change';

export interface DisplayScreen {
  /** Each line as shown, padded to the display's width with spaces. */
  lines: string[];
  cursor: { row: number; column: number };
  /** The lamp lit now (LED displays), or null. */
  lamp: DisplayLamp | null;
}

/** What one chunk of bytes did to the display, in order. */
export type DisplayChange =
  | { kind: 'text'; screen: DisplayScreen }
  | { kind: 'clear'; screen: DisplayScreen }
  | { kind: 'lamp'; lamp: DisplayLamp | null; screen: DisplayScreen }
  /** Bytes the register sent to the receipt printer on a shared line (after ESC = 1): not the display's. */
  | { kind: 'printer'; bytes: Uint8Array };

export interface DisplayDecoderStats {
  bytes: number;
  /** Commands this protocol does not know, skipped by their known length. */
  unknownCommands: number;
  /** Bytes that were neither text nor a command (line noise, a wrong baud rate). */
  garbage: number;
}

/** A decoder keeps its state between chunks: a command split across two reads is decoded once whole. */
export interface DisplayDecoder {
  readonly protocol: DisplayProtocol;
  push(bytes: Uint8Array): DisplayChange[];
  screen(): DisplayScreen;
  readonly stats: DisplayDecoderStats;
}
