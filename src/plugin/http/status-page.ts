/**
 * The plugin's status page: what a reseller or support engineer looks at beside the register. It updates
 * live (server-sent events): the units seen on the LAN, the orders and their states, and the problems that
 * need someone (printer off, server unreachable, write-back failing). A small demo register form posts an
 * order through the HTTP hook. Self-contained: no build step, no external assets.
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
</style>
</head>
<body>
<header><b>payconnect plugin</b><span id="who"></span><span id="server"></span><span id="live" class="muted"></span></header>
<main>
  <div style="display:grid; gap:14px; align-content:start">
    <section class="card"><h2>Needs attention</h2><ul id="problems"></ul></section>
    <section class="card"><h2>Units on the LAN</h2><table><thead><tr><th>Unit</th><th>Address</th><th>Status</th><th>Seen</th></tr></thead><tbody id="units"></tbody></table></section>
    <section class="card"><h2>Demo register</h2>
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
    <table><thead><tr><th>Order</th><th>Amount</th><th>Status</th><th>Unit</th><th>Host told</th><th>Receipt</th><th></th></tr></thead><tbody id="orders"></tbody></table>
  </section>
</main>
<script>
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s == null ? '' : s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
async function get(path) { const r = await fetch(path); return r.json(); }
async function refresh() {
  const [status, orders, units] = await Promise.all([get('/api/status'), get('/api/orders'), get('/api/terminals')]);
  $('who').textContent = status.pluginId + ' · register ' + status.registerId + ' · manifest ' + status.manifest;
  $('server').textContent = 'server: ' + (status.server === 'up' ? 'connected' : 'not connected');
  $('problems').innerHTML = status.problems.map((p) => '<li>' + esc(p) + '</li>').join('');
  $('units').innerHTML = units.map((u) => '<tr><td>' + esc(u.id) + ' <span class="muted">' + esc(u.name) + '</span></td><td>' + esc(u.address + ':' + u.port) + '</td><td>' + esc(u.status) + '</td><td>' + Math.round((Date.now() - u.lastSeen) / 1000) + ' s ago</td></tr>').join('') || '<tr><td colspan=4 class="muted">No unit seen yet.</td></tr>';
  $('orders').innerHTML = orders.map((o) =>
    '<tr data-order="' + esc(o.orderId) + '"><td>' + esc(o.orderId) + '<div class="muted">' + esc(o.source) + '</div></td><td>' + esc(o.amountText) +
    '</td><td><span class="st ' + esc(o.status) + '">' + esc(o.status) + '</span>' + (o.progress && !['paid','canceled'].includes(o.status) ? '<div class="muted">' + esc(o.progress) + '</div>' : '') +
    (o.payment && o.payment.failure ? '<div class="muted">' + esc(o.payment.failure.message) + '</div>' : '') +
    '</td><td>' + esc(o.terminal || '') + '</td><td>' + esc(o.writeBack) + (o.writeBackError ? '<div class="muted">' + esc(o.writeBackError) + '</div>' : '') +
    '</td><td>' + (o.status === 'paid' ? '<a href="/api/receipts/' + encodeURIComponent(o.orderId) + '?format=svg" target="_blank">view</a>' : '') +
    '</td><td>' + (['paid', 'canceled'].includes(o.status) ? '' : '<button data-cancel="' + esc(o.orderId) + '">Cancel</button>') + '</td></tr>').join('') ||
    '<tr><td colspan=7 class="muted">No orders yet.</td></tr>';
}
document.addEventListener('click', async (e) => {
  const id = e.target && e.target.dataset && e.target.dataset.cancel;
  if (id) { await fetch('/api/orders/' + encodeURIComponent(id) + '/cancel', { method: 'POST' }); refresh(); }
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
