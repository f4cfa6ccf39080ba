/**
 * Who may open the unit's live event stream, beyond what the local-request guard already checked (the
 * Host): the unit's own page and tools, not a web page of another origin. The stream itself, its events
 * and its end at shutdown are tested in a browser: test/terminal/terminal-page-live.spec.ts.
 */
import { streamRefusal } from './terminal-events';

describe(streamRefusal.name, () => {
  const host = '192.168.1.30:8702';

  it.each([
    ['a tool (no Origin)', {}],
    ['the touch page (its own origin)', { origin: `http://${host}`, fetchSite: 'same-origin' }],
    ['the touch page over https', { origin: `https://${host}` }],
  ])('lets %s listen', (_who, r) => {
    expect(streamRefusal({ host, ...r })).toBeUndefined();
  });

  it.each([
    ['another site', { origin: 'http://evil.example' }],
    ['another port of this address (the plugin page)', { origin: 'http://192.168.1.30:8701' }],
    ['a page the browser calls cross-site', { fetchSite: 'cross-site' }],
    ['an opaque origin (a sandboxed frame, a file)', { origin: 'null' }],
  ])('refuses %s with 403 cross_origin', (_who, r) => {
    expect(streamRefusal({ host, ...r })).toMatchObject({ status: 403, code: 'cross_origin' });
  });
});
