/**
 * The plugin's status page: what a reseller or support engineer looks at beside the register. It updates
 * live (server-sent events): the units seen on the LAN, the orders and their states, and the problems that
 * need someone (printer off, server unreachable, write-back failing, no unit for an offered order, rejected
 * inputs, forged results), each with what to do next. Orders newest first with the shop's local time and one
 * clear state; finished ones paged. The capture card shows each adapter's own counters (bytes, jobs, garbage,
 * reopened ports), the problems it ran into and the last inputs it could not read. Cancel asks first and says what happens when a unit is collecting. In
 * the demo only (status.demoRegister), a small register form posts an order through the HTTP hook.
 * Self-contained: no build step, no external assets.
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>payconnect plugin</title>
<style>
  :root { font-family: system-ui, "PingFang SC", "Noto Sans CJK SC", sans-serif; color: #1b1f24; background: #f4f6f8; }
  body { margin: 0; }
  header { background: #1e3a8a; color: #fff; padding: 10px 16px; display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
  header b { font-size: 18px; }
  main { padding: 14px; display: grid; gap: 14px; grid-template-columns: minmax(280px, 1fr) 2fr; }
  @media (max-width: 800px) { main { grid-template-columns: 1fr; } }
  .card { background: #fff; border-radius: 10px; padding: 12px 14px; box-shadow: 0 1px 3px #0002; }
  h2 { font-size: 15px; margin: 0 0 8px; color: #334155; }
  table { width: 100%; border-collapse: collapse; font-size: 13px; }
  th { text-align: left; color: #64748b; font-weight: 600; border-bottom: 1px solid #e2e8f0; padding: 4px; }
  td { border-bottom: 1px solid #f1f5f9; padding: 5px 4px; vertical-align: top; }
  .st { font-weight: 700; padding: 1px 6px; border-radius: 4px; background: #e2e8f0; }
  .st.paid { background: #dcfce7; color: #166534; } .st.failed { background: #fee2e2; color: #991b1b; }
  .st.canceled { background: #f1f5f9; color: #475569; } .st.paying, .st.claimed { background: #fef3c7; color: #92400e; }
  .st.offered { background: #dbeafe; color: #1e40af; }
  #problems li { color: #991b1b; margin-bottom: 4px; }
  #problems:empty::before { content: 'No problems.'; color: #166534; }
  form { display: grid; gap: 6px; }
  input, select, button { font-size: 14px; padding: 6px; }
  button { cursor: pointer; }
  .muted { color: #64748b; font-size: 12px; }
  .kv { display: grid; grid-template-columns: auto 1fr; gap: 0 10px; font-size: 12px; margin: 4px 0 8px; }
  .kv span:nth-child(odd) { color: #64748b; }
  .bad { color: #991b1b; }
</style>
</head>
<body>
<header><b>payconnect plugin</b><span id="who"></span><span id="server"></span><span id="live" class="muted"></span></header>
<main>
  <div style="display:grid; gap:14px; align-content:start">
    <section class="card"><h2>Needs attention</h2><ul id="problems"></ul></section>
    <section class="card"><h2>Capture</h2><div id="capture"></div></section>
    <section class="card"><h2>Units on the LAN</h2><table><thead><tr><th>Unit</th><th>Address</th><th>Status</th><th>Seen</th></tr></thead><tbody id="units"></tbody></table></section>
    <section class="card" id="demoCard" hidden><h2>Demo register</h2>
      <form id="demo">
        <input id="orderId" placeholder="Order number" required>
        <input id="amount" placeholder="Amount, e.g. 12.50" required>
        <select id="dispatch"><option value="">Dispatch: as the manifest says</option><option value="broadcast">broadcast</option><option value="multicast">multicast</option></select>
        <button type="submit">Send to the units</button>
        <div id="demoMsg" class="muted"></div>
      </form>
    </section>
  </div>
  <section class="card"><h2>Orders</h2>
    <div id="orderMsg" class="bad" role="alert"></div>
    <table><thead><tr><th>Time</th><th>Order</th><th>Amount</th><th>State</th><th>Unit</th><th>Register told</th><th>Receipt</th><th></th></tr></thead><tbody id="orders"></tbody></table>
    <button id="more" type="button" hidden>Show older finished orders</button>
  </section>
</main>
<script>
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s == null ? '' : s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
async function get(path) { const r = await fetch(path); return r.json(); }
const FINISHED = ['paid', 'canceled', 'failed'];
const PAGE = 20;
let shown = PAGE;
let zone;
/** One clear state per order: what it is now, and why when it is not what the cashier hoped. */
function stateOf(o) {
  const f = o.payment && o.payment.failure;
  switch (o.status) {
    case 'captured': return ['offered', 'Captured: offering…'];
    case 'offered': return ['offered', 'Offered: waiting for a unit'];
    case 'claimed': return ['claimed', 'Taken by ' + (o.terminal || 'a unit') + ': scanning the code'];
    case 'paying': return ['paying', 'Paying on ' + (o.terminal || 'a unit') + '…'];
    case 'paid': return ['paid', 'Paid' + paidBy(o)];
    case 'canceled': return ['canceled', 'Canceled'];
    case 'failed': return ['failed', 'Not paid' + (f ? ': ' + f.message : '') + (o.terminal ? ' (the unit may try again)' : '')];
    default: return [o.status, o.status];
  }
}
/** Who took the money, as the server signed it (method.provider): a real wallet, or the demo's simulator. */
function paidBy(o) {
  const p = o.payment && o.payment.method && o.payment.method.provider;
  return p === 'alipay' ? ' · Alipay' : p === 'wechat' ? ' · WeChat Pay' : p === 'simulator' ? ' · simulator (demo, no money)' : '';
}
function time(iso) {
  try { return new Intl.DateTimeFormat('en-GB', { timeZone: zone, month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso)); }
  catch (e) { return iso; }
}
function toldText(o) {
  if (o.writeBack === 'done') return 'yes';
  if (o.writeBackError) return 'retrying: ' + o.writeBackError;
  if (o.writeBack === 'due') return 'sending…';
  return '';
}
/** An adapter's counters as label/value pairs, nested ones as "io bytes in". */
function flat(stats, prefix) {
  const out = [];
  for (const [k, v] of Object.entries(stats || {})) {
    const label = (prefix ? prefix + ' ' : '') + k.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();
    if (v && typeof v === 'object' && !Array.isArray(v)) out.push(...flat(v, label));
    else out.push([label, v]);
  }
  return out;
}
/** Each adapter with its counters, what it ran into, and the last inputs it could not read. */
function captureHtml(status) {
  const adapters = (status.adapters || []).map((a) => {
    const title = '<b>' + esc(a.adapter) + '</b> <span class="muted">' + (a.capturing ? 'manifest ' + esc(a.manifest) : 'switched away: only telling the register results') + '</span>';
    const kv = flat(a.stats).map(([k, v]) => '<span>' + esc(k) + '</span><span>' + esc(v) + '</span>').join('');
    const trouble = (status.adapterProblems || []).filter((p) => p.adapter === a.adapter).map((p) =>
      '<div class="bad">' + esc(p.message) + ' <span class="muted">(' + p.count + '×, last ' + esc(time(p.lastAt)) + ')</span></div>').join('');
    return '<div>' + title + (kv ? '<div class="kv">' + kv + '</div>' : '') + trouble + '</div>';
  }).join('');
  const rejected = (status.rejected || []).slice(0, 5).map((r) =>
    '<li><span class="muted">' + esc(time(r.at)) + '</span> ' + esc(r.subject) + ': ' + esc(r.message) + '</li>').join('');
  return adapters + (rejected ? '<div class="muted">Last inputs that could not be read:</div><ul>' + rejected + '</ul>' : '');
}
/** How long the plugin has run and the memory it holds, for the support engineer on the phone. */
function upText(p) {
  if (!p) return '';
  const s = p.uptimeSeconds, d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return ' · up ' + (d ? d + ' d ' : '') + (d || h ? h + ' h ' : '') + m + ' min · ' + Math.round(p.memoryMB.rss) + ' MB';
}
async function refresh() {
  const [status, orders, units] = await Promise.all([get('/api/status'), get('/api/orders'), get('/api/terminals')]);
  zone = status.timeZone;
  $('demoCard').hidden = !status.demoRegister;
  $('who').textContent = status.pluginId + ' · register ' + status.registerId + ' · manifest ' + status.manifest + upText(status.process);
  $('server').textContent = 'server: ' + (status.server === 'up' ? 'connected' : 'not connected');
  $('problems').innerHTML = status.problems.map((p) => '<li>' + esc(p) + '</li>').join('');
  $('capture').innerHTML = captureHtml(status);
  $('units').innerHTML = units.map((u) => '<tr><td>' + esc(u.id) + ' <span class="muted">' + esc(u.name) + '</span></td><td>' + esc(u.address + ':' + u.port) + '</td><td>' + esc(u.status) + '</td><td>' + Math.round((Date.now() - u.lastSeen) / 1000) + ' s ago</td></tr>').join('') || '<tr><td colspan=4 class="muted">No unit seen yet.</td></tr>';
  const newest = orders.slice().sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  const open = newest.filter((o) => !FINISHED.includes(o.status));
  const done = newest.filter((o) => FINISHED.includes(o.status));
  const rows = open.concat(done.slice(0, shown));
  $('more').hidden = done.length <= shown;
  $('more').textContent = 'Show older finished orders (' + (done.length - shown) + ' more)';
  $('orders').innerHTML = rows.map((o) => {
    const [cls, label] = stateOf(o);
    return '<tr data-order="' + esc(o.orderId) + '"><td class="muted">' + esc(time(o.createdAt)) + '</td><td>' + esc(o.orderId) + '<div class="muted">' + esc(o.source) + '</div></td><td>' + esc(o.amountText) +
      '</td><td><span class="st ' + esc(cls) + '">' + esc(label) + '</span>' +
      (o.progress && !FINISHED.includes(o.status) ? '<div class="muted">' + esc(o.progress) + '</div>' : '') + '</td><td>' + esc(o.terminal || '') + '</td><td>' + esc(toldText(o)) +
      '</td><td>' + (o.status === 'paid' ? '<a href="/api/receipts/' + encodeURIComponent(o.orderId) + '?format=svg" target="_blank">view</a>' : '') +
      '</td><td>' + (['paid', 'canceled'].includes(o.status) ? '' : '<button data-cancel="' + esc(o.orderId) + '" data-state="' + esc(o.status) + '" data-unit="' + esc(o.terminal || '') + '">Cancel</button>') + '</td></tr>';
  }).join('') || '<tr><td colspan=8 class="muted">No orders yet.</td></tr>';
}
$('more').onclick = () => { shown += PAGE; refresh(); };
/** What canceling means now, in plain words, asked before anything is sent. */
function cancelQuestion(id, state, unit) {
  if (state === 'paying' || state === 'claimed')
    return 'Unit ' + (unit || '?') + ' is collecting order ' + id + ' right now.\\n\\nCancel asks the payment server to stop it. If the customer has already paid, the payment stands: the order ends PAID and must be refunded. Otherwise nothing is charged.\\n\\nCancel order ' + id + '?';
  return 'Withdraw order ' + id + ' from the units? Nothing has been charged for it.';
}
document.addEventListener('click', async (e) => {
  const b = e.target && e.target.dataset;
  const id = b && b.cancel;
  if (!id) return;
  if (!window.confirm(cancelQuestion(id, b.state, b.unit))) return;
  $('orderMsg').textContent = '';
  const r = await fetch('/api/orders/' + encodeURIComponent(id) + '/cancel', { method: 'POST' }).catch(() => null);
  // A refused cancel says why and what to do (the server unreachable while a unit collects: try again; the
  // customer already paid: refund), instead of the button seeming to do nothing.
  if (!r) $('orderMsg').textContent = 'Cancel of order ' + id + ' not sent: this page lost the plugin. Reload and try again.';
  else if (!r.ok) {
    const data = await r.json().catch(() => ({}));
    $('orderMsg').textContent = 'Cancel of order ' + id + ' refused: ' + (data.error ? data.error.message : 'HTTP ' + r.status);
  }
  refresh();
});
$('demo').onsubmit = async (e) => {
  e.preventDefault();
  const body = { orderId: $('orderId').value.trim(), amount: $('amount').value.trim() };
  if ($('dispatch').value) body.dispatch = { mode: $('dispatch').value };
  const r = await fetch('/api/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const data = await r.json();
  $('demoMsg').textContent = r.ok ? 'Sent: ' + data.orderId + ' (' + data.status + ')' : (data.error ? data.error.message : 'failed');
  if (r.ok) { $('orderId').value = ''; $('amount').value = ''; }
  refresh();
};
const events = new EventSource('/api/events');
events.onopen = () => { $('live').textContent = 'live'; };
events.onerror = () => { $('live').textContent = 'reconnecting…'; };
let pending = false;
events.onmessage = () => { if (!pending) { pending = true; setTimeout(() => { pending = false; refresh(); }, 100); } };
refresh();
setInterval(refresh, 5000);
</script>
</body>
</html>
`;
