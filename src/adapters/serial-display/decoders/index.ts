/** createDisplayDecoder: the decoder for the protocol the manifest names (never guessed from the bytes). */
import type { DisplayDecoder, DisplayProtocol } from '../display-model';
import { AedexDecoder } from './aedex';
import type { DisplayDecoderOptions } from './base';
import { Cd5220Decoder } from './cd5220';
import { EpsonDecoder } from './epson';
import { Led8Decoder, type Led8LampVariant } from './led8';
import { LogicControlsDecoder } from './logic-controls';
import { UtcDecoder } from './utc';

export interface CreateDisplayDecoderOptions extends DisplayDecoderOptions {
  /** led8 only: how the register lights the lamps (research note §1.4). Default `binary`. */
  lamps?: Led8LampVariant;
  /** utc only: the mode the display starts in. Default `standard`. */
  utcMode?: 'standard' | 'enhanced';
}

export function createDisplayDecoder(
  protocol: DisplayProtocol,
  options: CreateDisplayDecoderOptions = {},
): DisplayDecoder {
  switch (protocol) {
    case 'epson':
      return new EpsonDecoder(options);
    case 'cd5220':
      return new Cd5220Decoder(options);
    case 'led8':
      return new Led8Decoder(options);
    case 'aedex':
      return new AedexDecoder(options);
    case 'utc':
      return new UtcDecoder({ ...options, mode: options.utcMode });
    case 'logic-controls':
      return new LogicControlsDecoder(options);
  }
}

export { AedexDecoder, Cd5220Decoder, EpsonDecoder, Led8Decoder, LogicControlsDecoder, UtcDecoder };
export type { DisplayDecoderOptions, Led8LampVariant };
