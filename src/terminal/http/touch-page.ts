/**
 * The unit's touch page: one self-contained HTML file (no build step, no external assets) for a phone-size
 * screen. Offers list -> the amount, large -> claim -> scan (the code field takes a keyboard-wedge
 * scanner: it types the digits and Enter submits) -> progress -> result; today's history below.
 * Chinese and English, following the browser's language, switchable.
 */
export const TOUCH_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>payconnect</title>
<style>
  :root { font-family: system-ui, "PingFang SC", "Noto Sans CJK SC", sans-serif; color: #1b1f24; background: #f3f5f7; }
  body { margin: 0; }
  header { display: flex; justify-content: space-between; align-items: center; padding: 10px 14px; background: #14532d; color: #fff; }
  header b { font-size: 18px; }
  header button { background: transparent; color: #fff; border: 1px solid #fff8; border-radius: 6px; padding: 4px 10px; font-size: 14px; }
  #net { font-size: 13px; opacity: .9; }
  main { padding: 12px; max-width: 520px; margin: 0 auto; }
  .card { background: #fff; border-radius: 12px; padding: 14px; margin-bottom: 12px; box-shadow: 0 1px 3px #0002; }
  .offer { display: flex; justify-content: space-between; align-items: center; cursor: pointer; }
  .offer .amt { font-size: 24px; font-weight: 700; }
  .muted { color: #5b6570; font-size: 14px; }
  #amount { font-size: 40px; font-weight: 800; text-align: center; margin: 10px 0; letter-spacing: 1px; }
  button.big { width: 100%; font-size: 22px; padding: 16px; border: 0; border-radius: 10px; background: #15803d; color: #fff; margin-top: 8px; }
  button.plain { width: 100%; font-size: 16px; padding: 10px; border: 1px solid #ccd; border-radius: 10px; background: #fff; margin-top: 8px; }
  input#code { width: 100%; box-sizing: border-box; font-size: 26px; padding: 12px; border: 2px solid #15803d; border-radius: 10px; text-align: center; letter-spacing: 2px; }
  #result { font-size: 30px; font-weight: 800; text-align: center; margin: 14px 0; }
  .ok { color: #15803d; } .bad { color: #b91c1c; } .wait { color: #a16207; }
  .err { color: #b91c1c; margin-top: 8px; min-height: 1em; }
  table { width: 100%; border-collapse: collapse; font-size: 14px; }
  td { padding: 4px 2px; border-bottom: 1px solid #eee; }
</style>
</head>
<body>
<header><b id="title"></b><span id="net"></span><button id="lang" type="button"></button></header>
<main>
  <section id="list"></section>
  <section id="detail" class="card" hidden>
    <div class="muted" id="order"></div>
    <div id="amount"></div>
    <div id="state" class="muted"></div>
    <button id="claim" class="big" type="button"></button>
    <form id="payform" hidden>
      <label class="muted" for="code" id="codelabel"></label>
      <input id="code" inputmode="numeric" autocomplete="off" autofocus>
      <button class="big" type="submit" id="paybtn"></button>
    </form>
    <div id="result"></div>
    <div class="err" id="error"></div>
    <button id="back" class="plain" type="button"></button>
  </section>
  <section class="card"><div class="muted" id="histtitle"></div><table id="history"></table></section>
</main>
<script>
const T = {
  en: { title: 'Payments', offers: 'Offers from the register', none: 'Waiting for the register…', claim: 'Take this payment',
    scan: 'Scan or type the customer\\'s payment code', pay: 'Collect', back: 'Back to offers', lang: '中文',
    open: 'Open', claiming: 'Taking…', claimed: 'Yours: scan the code', taken: 'Taken by', withdrawn: 'No longer offered',
    canceled: 'Canceled by the register', expired: 'Expired', paying: 'Paying…', pending: 'Customer is confirming…',
    succeeded: 'Paid', failed: 'Not paid', refunded: 'Refunded', history: 'Today', serverDown: 'Server unreachable: retrying',
    serverUp: 'Online', order: 'Order', badCode: 'That is not a payment code (16–24 digits). Scan again.' },
  zh: { title: '收款', offers: '收银台发来的订单', none: '等待收银台…', claim: '接单', scan: '扫描或输入顾客付款码', pay: '收款',
    back: '返回订单列表', lang: 'English', open: '待接单', claiming: '接单中…', claimed: '已接单：请扫码', taken: '已被接单：',
    withdrawn: '订单已撤回', canceled: '收银台已取消', expired: '已过期', paying: '支付中…', pending: '顾客确认中…',
    succeeded: '已支付', failed: '支付失败', refunded: '已退款', history: '今日记录', serverDown: '服务器连接中断，正在重试',
    serverUp: '在线', order: '订单', badCode: '不是有效的付款码（16–24位数字），请重新扫描。' },
};
let lang = localStorage.getItem('lang') || (navigator.language.startsWith('zh') ? 'zh' : 'en');
let current = null;
const $ = (id) => document.getElementById(id);
const t = (k) => T[lang][k];
function fmt(o) { return o.amountText + ' ' + o.amount.currency; }
async function api(method, path, body) {
  const r = await fetch(path, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  const data = await r.json().catch(() => ({}));
  if (!r.ok && r.status !== 202) throw Object.assign(new Error(data.error ? data.error.message : r.statusText), { code: data.error && data.error.code });
  return data;
}
function stateText(o) {
  if (o.payment) {
    const p = o.payment.status;
    if (p === 'paying') return t('paying');
    if (p === 'pending') return t('pending');
    if (p === 'failed' || p === 'canceled') return t('failed') + (o.payment.failure ? ': ' + o.payment.failure.message : '');
    return t(p) || p;
  }
  if (o.status === 'taken') return t('taken') + ' ' + (o.takenBy || '');
  return t(o.status) || o.status;
}
function labels() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  $('title').textContent = t('title'); $('lang').textContent = t('lang'); $('claim').textContent = t('claim');
  $('codelabel').textContent = t('scan'); $('paybtn').textContent = t('pay'); $('back').textContent = t('back');
  $('histtitle').textContent = t('history');
}
function render(offers) {
  const list = $('list');
  list.innerHTML = '';
  const h = document.createElement('div'); h.className = 'muted'; h.textContent = offers.length ? t('offers') : t('none'); list.appendChild(h);
  for (const o of offers) {
    const d = document.createElement('div'); d.className = 'card offer'; d.dataset.order = o.orderId;
    d.innerHTML = '<div><div class="amt"></div><div class="muted"></div></div><div class="muted st"></div>';
    d.querySelector('.amt').textContent = fmt(o);
    d.querySelector('.muted').textContent = t('order') + ' ' + o.orderId + ' · ' + o.registerId;
    d.querySelector('.st').textContent = stateText(o);
    d.onclick = () => open(o.orderId);
    list.appendChild(d);
  }
  if (current) {
    const o = offers.find((x) => x.orderId === current);
    if (o) show(o);
  } else {
    // The register's "collect now": go straight to the scan screen.
    const c = offers.find((x) => x.collect && x.status === 'claimed' && !x.payment);
    if (c) open(c.orderId);
  }
}
function show(o) {
  $('list').hidden = true; $('detail').hidden = false;
  $('order').textContent = t('order') + ' ' + o.orderId + ' · ' + o.registerId;
  $('amount').textContent = fmt(o);
  $('state').textContent = o.payment ? '' : stateText(o);
  const paid = o.payment && ['succeeded', 'refunded'].includes(o.payment.status);
  const busy = o.payment && ['paying', 'pending'].includes(o.payment.status);
  $('claim').hidden = o.status !== 'open';
  const form = $('payform');
  const wasHidden = form.hidden;
  form.hidden = !(o.status === 'claimed' && !paid && !busy);
  if (wasHidden && !form.hidden) { $('code').value = ''; $('code').focus(); }
  const r = $('result');
  r.className = paid ? 'ok' : busy ? 'wait' : (o.payment ? 'bad' : '');
  r.textContent = o.payment ? stateText(o) : '';
}
async function open(orderId) { current = orderId; $('error').textContent = ''; await refresh(); }
$('back').onclick = () => { current = null; $('detail').hidden = true; $('list').hidden = false; refresh(); };
$('lang').onclick = () => { lang = lang === 'zh' ? 'en' : 'zh'; localStorage.setItem('lang', lang); labels(); refresh(); };
$('claim').onclick = async () => {
  $('error').textContent = '';
  try { await api('POST', '/api/offers/' + encodeURIComponent(current) + '/claim'); } catch (e) { $('error').textContent = e.message; }
  refresh();
};
$('payform').onsubmit = async (ev) => {
  ev.preventDefault();
  const code = $('code').value.replace(/\\s+/g, '');
  $('error').textContent = '';
  if (!/^\\d{16,24}$/.test(code)) { $('error').textContent = t('badCode'); $('code').select(); return; }
  $('code').value = '';
  $('payform').hidden = true;
  $('result').className = 'wait'; $('result').textContent = t('paying');
  try { await api('POST', '/api/offers/' + encodeURIComponent(current) + '/pay', { paymentCode: code }); } catch (e) { $('error').textContent = e.message; }
  refresh();
};
async function refresh() {
  try {
    const [offers, status, history] = await Promise.all([api('GET', '/api/offers'), api('GET', '/api/status'), api('GET', '/api/history')]);
    $('net').textContent = status.server === 'up' ? t('serverUp') : t('serverDown');
    render(offers);
    const tb = $('history'); tb.innerHTML = '';
    for (const h of history) {
      const tr = document.createElement('tr');
      tr.innerHTML = '<td></td><td></td><td></td>';
      tr.children[0].textContent = h.time.slice(11, 16);
      tr.children[1].textContent = h.orderId;
      tr.children[2].textContent = h.amountText + ' · ' + (t(h.status) || h.status);
      tb.appendChild(tr);
    }
  } catch (e) { $('net').textContent = t('serverDown'); }
}
labels();
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
`;
