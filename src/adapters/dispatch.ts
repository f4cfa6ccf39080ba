/**
 * Reading a dispatch (which terminals an order is offered to): the manifest's default and the per-order
 * `dispatch` of an http-hook body use the same rules, so they live here once.
 */
import { DEVICE_ID_RULE, isDeviceId } from '../protocol/ids';
import { DispatchMode } from './host-adapter';
import { FieldProblems, describeValue, isFields } from './field-problems';

export const DISPATCH_MODES = ['unicast', 'broadcast', 'multicast'] as const;

/** `{mode: unicast, terminal}`, `{mode: broadcast}` or `{mode: multicast}`; anything else is a problem. */
export function readDispatch(raw: unknown, p: FieldProblems): DispatchMode | undefined {
  if (!isFields(raw)) {
    p.add(
      `must be {mode: unicast, terminal: ID}, {mode: broadcast} or {mode: multicast}; got ${describeValue(raw)}`,
    );
    return undefined;
  }
  const mode = raw.mode;
  if (!(DISPATCH_MODES as readonly unknown[]).includes(mode)) {
    p.at('mode').add(`must be one of unicast, broadcast, multicast; got ${describeValue(mode)}`);
    return undefined;
  }
  const allowed = mode === 'unicast' ? ['mode', 'terminal'] : ['mode'];
  let ok = true;
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key)) {
      p.at(key).add(
        key === 'terminal'
          ? `only a unicast dispatch names a terminal; ${String(mode)} offers the order to every unit`
          : `unknown field; allowed here: ${allowed.join(', ')}`,
      );
      ok = false;
    }
  }
  if (mode === 'unicast') {
    const terminal = raw.terminal;
    if (!isDeviceId(terminal)) {
      p.at('terminal').add(
        terminal === undefined
          ? 'is required for a unicast dispatch: the id of the terminal, e.g. T1'
          : `must be a terminal id (${DEVICE_ID_RULE}); got ${describeValue(terminal)}`,
      );
      return undefined;
    }
    return ok ? { mode, terminal } : undefined;
  }
  return ok ? { mode: mode as 'broadcast' | 'multicast' } : undefined;
}
