/**
 * The unit's touch page: one self-contained HTML file (no build step, no external assets) for a phone-size
 * screen. Open offers first, newest on top, large -> the amount, large -> claim -> scan (the code field
 * takes a keyboard-wedge scanner: it types the digits and Enter submits) -> progress -> result; finished
 * offers and payments move to today's history below, with times in the shop's zone (GET /api/status
 * `timeZone`). Chinese and English, following the browser's language, switchable; every state and every
 * failure code the server or the unit produces has its own label in both.
 *
 * Live: the page listens to the unit's event stream (GET /api/events, terminal-events.ts) and reads the API
 * again as soon as the unit says something changed — a new offer, a claim, a payment's progress, a
 * withdrawn offer — at most once per LIVE_MS however many events a burst brings. While the stream is down
 * (the header says "reconnecting…") a slow poll every FALLBACK_POLL_MS keeps the page going.
 *
 * Rush hour: the page touches the DOM only when an answer differs from the last, and then updates rows in
 * place by key (order id, attempt). A row under the clerk's finger is never replaced, so a tap that starts
 * on a row ends on the same row and is not lost.
 *
 * The page checks a scanned code with the protocol's payment code rule before it sends it: its pattern,
 * the spaces it removes and the lengths its message names are written into the page from
 * protocol/payment-code.ts, never copied by hand.
 */
import {
  PAYMENT_CODE_MAX_DIGITS,
  PAYMENT_CODE_MIN_DIGITS,
  PAYMENT_CODE_PATTERN,
  PAYMENT_CODE_SPACES,
} from '../../protocol/payment-code';

const CODE_DIGITS = `${PAYMENT_CODE_MIN_DIGITS}–${PAYMENT_CODE_MAX_DIGITS}`;

export const TOUCH_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>payconnect</title>
<style>
  :root { font-family: system-ui, "PingFang SC", "Noto Sans CJK SC", sans-serif; color: #1b1f24; background: #f3f5f7; }
  body { margin: 0; }
  header { display: flex; justify-content: space-between; align-items: center; gap: 8px; padding: 8px 12px; background: #14532d; color: #fff; }
  header b { font-size: 18px; }
  header button { background: transparent; color: #fff; border: 1px solid #fff8; border-radius: 6px; padding: 4px 10px; font-size: 14px; }
  #net { font-size: 13px; opacity: .9; flex: 1; text-align: right; }
  #net.down { color: #fecaca; font-weight: 700; opacity: 1; }
  #live { font-size: 12px; opacity: .75; white-space: nowrap; }
  #live.down { color: #fde68a; opacity: 1; }
  main { padding: 10px; max-width: 520px; margin: 0 auto; }
  .card { background: #fff; border-radius: 12px; padding: 12px 14px; margin-bottom: 10px; box-shadow: 0 1px 3px #0002; }
  .offer { display: flex; justify-content: space-between; align-items: center; gap: 8px; cursor: pointer; border-left: 6px solid #15803d; min-height: 56px; -webkit-tap-highlight-color: #15803d33; }
  .offer.mine { border-left-color: #a16207; }
  .offer.bad { border-left-color: #b91c1c; }
  .offer .amt { font-size: 28px; font-weight: 800; white-space: nowrap; }
  .offer .amt small { font-size: 15px; font-weight: 600; color: #5b6570; }
  .offer .st { text-align: right; font-weight: 600; font-size: 13px; max-width: 38%; }
  .muted { color: #5b6570; font-size: 14px; }
  #offerstitle { margin: 2px 2px 8px; }
  #amount { font-size: 40px; font-weight: 800; text-align: center; margin: 10px 0; letter-spacing: 1px; }
  button.big { width: 100%; font-size: 22px; padding: 16px; border: 0; border-radius: 10px; background: #15803d; color: #fff; margin-top: 8px; }
  button.plain { width: 100%; font-size: 16px; padding: 10px; border: 1px solid #ccd; border-radius: 10px; background: #fff; margin-top: 8px; }
  input#code { width: 100%; box-sizing: border-box; font-size: 26px; padding: 12px; border: 2px solid #15803d; border-radius: 10px; text-align: center; letter-spacing: 2px; }
  #result { font-size: 26px; font-weight: 800; text-align: center; margin: 10px 0; }
  #result.bad { font-size: 19px; }
  .ok { color: #15803d; } .bad { color: #b91c1c; } .wait { color: #a16207; }
  .err { color: #b91c1c; margin-top: 8px; min-height: 1em; }
  #histtitle { display: flex; justify-content: space-between; margin-bottom: 4px; }
  table { width: 100%; border-collapse: collapse; font-size: 14px; }
  td { padding: 5px 2px; border-bottom: 1px solid #eee; vertical-align: top; }
  td.tm { white-space: nowrap; color: #5b6570; width: 3.2em; }
  td.amt { white-space: nowrap; text-align: right; }
  td .lbl { display: block; font-size: 13px; }
  td .again { display: block; font-size: 13px; font-weight: 700; color: #15803d; }
  tr.retry { cursor: pointer; }
</style>
</head>
<body>
<header><b id="title"></b><span id="net"></span><span id="live"></span><button id="lang" type="button"></button></header>
<main>
  <section id="list"><div class="muted" id="offerstitle"></div><div id="open"></div></section>
  <section id="detail" class="card" hidden>
    <div class="muted" id="order"></div>
    <div id="amount"></div>
    <div id="state" class="muted"></div>
    <div id="result"></div>
    <button id="claim" class="big" type="button"></button>
    <form id="payform" hidden>
      <label class="muted" for="code" id="codelabel"></label>
      <input id="code" inputmode="numeric" autocomplete="off" autofocus>
      <button class="big" type="submit" id="paybtn"></button>
    </form>
    <div class="err" id="error"></div>
    <button id="back" class="plain" type="button"></button>
  </section>
  <section class="card"><div class="muted" id="histtitle"><span id="histname"></span><span id="zone"></span></div><table id="history"><tbody></tbody></table></section>
</main>
<script>
const T = {
  en: { title: 'Payments', offers: 'Open offers from the register', none: 'Waiting for the register…', claim: 'Take this payment',
    scan: 'Scan or type the customer\\'s payment code', pay: 'Collect', back: 'Back to offers', lang: '中文',
    history: 'Today', serverDown: 'Server unreachable: retrying', serverUp: 'Online', order: 'Order', noHistory: 'Nothing yet today', again: 'Tap to collect again',
    live: 'live', reconnecting: 'reconnecting…',
    badCode: 'That is not a payment code (${CODE_DIGITS} digits). Scan again.',
    'offer.open': 'Open: tap to take', 'offer.claiming': 'Taking…', 'offer.claimed': 'Yours: scan the code',
    'offer.taken': 'Taken by {who}', 'offer.withdrawn': 'No longer offered', 'offer.canceled': 'Canceled by the register',
    'offer.expired': 'Expired: nobody took it in time',
    'pay.paying': 'Sending to the wallet…', 'pay.pending': 'Waiting for the wallet\\'s answer…',
    'pay.pending.customer': 'Customer is confirming on their phone…',
    'pay.pending.provider': 'No answer from the wallet yet: asking again. Do not charge again.', 'pay.succeeded': 'Paid',
    'pay.refunded': 'Refunded', 'pay.failed': 'Not paid', 'pay.canceled': 'Canceled: nothing was charged',
    'pay.error': 'Could not send: {msg}. Nothing was charged; scan again, and call support if it repeats.',
    'code.insufficient_funds': 'Declined: not enough money. Ask for another way to pay.',
    'code.invalid_code': 'Payment code invalid or expired. Ask the customer to refresh it, then scan again.',
    'code.declined': 'Declined by the wallet. Ask for another way to pay.',
    'code.provider_error': 'The wallet failed; the customer was not charged. Scan again.',
    'code.trade_closed': 'The wallet closed the trade unpaid. Scan again.',
    'code.closed': 'The wallet closed the trade unpaid. Scan again.',
    'code.canceled': 'Canceled by the register: nothing was charged.',
    'code.customer_timeout': 'The customer did not confirm in time: nothing was charged. Scan again.',
    'code.reversed': 'Canceled: the customer\\'s money was returned.',
    'code.not_charged': 'Not charged: {msg}',
    'code.unknown': 'Not paid (code {code}). Ask the customer to pay again; call support if it repeats.' },
  zh: { title: '收款', offers: '收银台发来的待收订单', none: '等待收银台…', claim: '接单', scan: '扫描或输入顾客付款码', pay: '收款',
    back: '返回订单列表', lang: 'English', history: '今日记录', serverDown: '服务器连接中断，正在重试', serverUp: '在线', order: '订单',
    noHistory: '今天还没有记录', again: '点按重新收款',
    live: '实时', reconnecting: '正在重新连接…', badCode: '不是有效的付款码（${CODE_DIGITS}位数字），请重新扫描。',
    'offer.open': '待接单：点按接单', 'offer.claiming': '接单中…', 'offer.claimed': '已接单：请扫码',
    'offer.taken': '已被 {who} 接单', 'offer.withdrawn': '订单已撤回', 'offer.canceled': '收银台已取消',
    'offer.expired': '已过期：无人接单',
    'pay.paying': '正在提交支付…', 'pay.pending': '等待支付平台结果…',
    'pay.pending.customer': '顾客正在手机上确认…',
    'pay.pending.provider': '支付平台暂未答复，正在查询。请勿重复收款。', 'pay.succeeded': '已支付',
    'pay.refunded': '已退款', 'pay.failed': '支付失败', 'pay.canceled': '已取消，未扣款',
    'pay.error': '无法发送：{msg}。未扣款，请重新扫码；如反复出现请联系技术支持。',
    'code.insufficient_funds': '余额不足，支付被拒。请顾客换一种付款方式。',
    'code.invalid_code': '付款码无效或已过期。请顾客刷新付款码后重新扫描。',
    'code.declined': '支付平台拒绝了付款。请顾客换一种付款方式。',
    'code.provider_error': '支付平台出错，顾客未被扣款。请重新扫码。',
    'code.trade_closed': '支付平台已关闭交易，未扣款。请重新扫码。',
    'code.closed': '支付平台已关闭交易，未扣款。请重新扫码。',
    'code.canceled': '收银台已取消，未扣款。',
    'code.customer_timeout': '顾客未及时确认，未扣款。请重新扫码。',
    'code.reversed': '已撤销，款项已退回顾客。',
    'code.not_charged': '未扣款，请重新扫码（{msg}）',
    'code.unknown': '未支付（代码 {code}）。请顾客重新付款；如反复出现请联系技术支持。' },
};
let lang = localStorage.getItem('lang') || (navigator.language.startsWith('zh') ? 'zh' : 'en');
let current = null;
let zone = undefined;
let last = { offers: '', history: '', lang: '' };
const $ = (id) => document.getElementById(id);
const t = (k, vars) => {
  let s = T[lang][k];
  if (s === undefined) return undefined;
  for (const v in vars || {}) s = s.split('{' + v + '}').join(vars[v]);
  return s;
};
function fmt(o) { return o.amountText + ' ' + o.amount.currency; }
async function api(method, path, body) {
  const r = await fetch(path, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  const data = await r.json().catch(() => ({}));
  if (!r.ok && r.status !== 202) throw Object.assign(new Error(data.error ? data.error.message : r.statusText), { code: data.error && data.error.code });
  return data;
}
/** The label of a failure {code, message}: its own words per code, or the generic one with the raw code. */
function failureText(f) {
  if (!f) return undefined;
  return t('code.' + f.code, { msg: f.message }) || t('code.unknown', { code: f.code });
}
/** The label of a payment (an offer's latest attempt, or a history row): status, then why. */
function paymentText(p) {
  const f = p.failure || null;
  if (p.status === 'error') {
    const e = p.error || f || { message: '' };
    return t('pay.error', { msg: e.message });
  }
  if ((p.status === 'failed' || p.status === 'canceled') && f) return failureText(f);
  if (p.status === 'pending' && p.waitingFor) return t('pay.pending.' + p.waitingFor);
  return t('pay.' + p.status) || t('code.unknown', { code: p.status });
}
function paymentClass(p) {
  if (p.status === 'succeeded' || p.status === 'refunded') return 'ok';
  if (p.status === 'paying' || p.status === 'pending') return 'wait';
  return 'bad';
}
function stateText(o) {
  if (o.payment) return paymentText(o.payment);
  return t('offer.' + o.status, { who: o.takenBy || '?' }) || t('code.unknown', { code: o.status });
}
/**
 * On the list: offered, being taken, or claimed and not tried or still being paid. Everything else is
 * history: paid, failed, canceled, taken, withdrawn, expired. A claimed order whose payment failed is in
 * the history, and tapping its row opens it to collect again.
 */
function active(o) {
  if (o.status === 'open' || o.status === 'claiming') return true;
  return o.status === 'claimed' && (!o.payment || ['paying', 'pending'].includes(o.payment.status));
}
function retryable(orderId) {
  const o = lastOffers.find((x) => x.orderId === orderId);
  return !!o && o.status === 'claimed' && !active(o) && !['succeeded', 'refunded'].includes(o.payment.status);
}
const newest = (a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0);
function clock(iso) {
  try {
    return new Intl.DateTimeFormat(lang === 'zh' ? 'zh-CN' : 'en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso));
  } catch (e) { return iso.slice(11, 16) + ' UTC'; }
}
function labels() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  $('title').textContent = t('title'); $('lang').textContent = t('lang'); $('claim').textContent = t('claim');
  $('codelabel').textContent = t('scan'); $('paybtn').textContent = t('pay'); $('back').textContent = t('back');
  $('histname').textContent = t('history');
  showLive();
}
function setText(el, s) { if (el.textContent !== s) el.textContent = s; }
function setClass(el, s) { if (el.className !== s) el.className = s; }
/**
 * Puts one element per key into container in the given order, reusing the element a key had: only text
 * that changed is written, and a node is moved only when it is out of place (never rebuilt).
 */
function keyed(container, items, make, fill) {
  const have = new Map();
  for (const el of Array.from(container.children)) have.set(el.dataset.key, el);
  let at = container.firstElementChild;
  for (const it of items) {
    let el = have.get(it.key);
    if (el) have.delete(it.key); else { el = make(it); el.dataset.key = it.key; }
    fill(el, it);
    if (el !== at) container.insertBefore(el, at); else at = at.nextElementSibling;
  }
  for (const el of have.values()) el.remove();
}
function makeCard(it) {
  const d = document.createElement('div');
  d.innerHTML = '<div><div class="amt"><span></span> <small></small></div><div class="muted ord"></div></div><div class="muted st"></div>';
  return d;
}
function fillCard(d, it) {
  const o = it.o;
  d.dataset.order = o.orderId;
  setClass(d, 'card offer' + (o.status === 'claimed' ? ' mine' : '') + (o.payment && paymentClass(o.payment) === 'bad' ? ' bad' : ''));
  setText(d.querySelector('.amt span'), o.amountText);
  setText(d.querySelector('.amt small'), o.amount.currency);
  setText(d.querySelector('.ord'), t('order') + ' ' + o.orderId + ' · ' + o.registerId);
  setText(d.querySelector('.st'), stateText(o));
}
function makeRow() {
  const tr = document.createElement('tr');
  tr.innerHTML = '<td class="tm"></td><td><span class="oid"></span><span class="lbl"></span><span class="again"></span></td><td class="amt"></td>';
  return tr;
}
function fillRow(tr, it) {
  tr.dataset.order = it.orderId;
  setText(tr.querySelector('.tm'), clock(it.at));
  setText(tr.querySelector('.oid'), it.orderId);
  const l = tr.querySelector('.lbl');
  setText(l, it.label); setClass(l, 'lbl ' + it.cls);
  const again = it.retry ? t('again') : '';
  setText(tr.querySelector('.again'), again);
  setClass(tr, it.retry ? 'retry' : '');
  setText(tr.querySelector('.amt'), it.amountText);
}
function render(offers, history) {
  const open = offers.filter(active).map((o) => ({ key: o.orderId, o, at: o.receivedAt || o.expiresAt })).sort(newest);
  setText($('offerstitle'), open.length ? t('offers') : t('none'));
  keyed($('open'), open, makeCard, fillCard);
  // Today: every payment attempt, and the offers that ended without one on this unit.
  const paid = new Set(history.map((h) => h.orderId));
  const latest = new Set();
  const rows = history.map((h) => {
    const first = !latest.has(h.orderId); latest.add(h.orderId);
    return { key: 'a:' + h.orderId + '#' + h.attempt, orderId: h.orderId, at: h.time, amountText: h.amountText,
      label: paymentText(h), cls: paymentClass(h), retry: first && retryable(h.orderId) };
  });
  for (const o of offers) {
    if (active(o) || paid.has(o.orderId)) continue;
    rows.push({ key: 'o:' + o.orderId, orderId: o.orderId, at: o.receivedAt || o.expiresAt, amountText: o.amountText,
      label: stateText(o), cls: 'muted' });
  }
  rows.sort(newest);
  const tb = $('history').tBodies[0];
  if (!rows.length) rows.push({ key: 'none', orderId: '', at: '', amountText: '', label: t('noHistory'), cls: 'muted' });
  keyed(tb, rows, makeRow, (tr, it) => (it.key === 'none' ? (setText(tr.querySelector('.lbl'), it.label), setText(tr.querySelector('.tm'), '')) : fillRow(tr, it)));
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
  setText($('order'), t('order') + ' ' + o.orderId + ' · ' + o.registerId);
  setText($('amount'), fmt(o));
  setText($('state'), o.payment ? '' : stateText(o));
  const paid = o.payment && ['succeeded', 'refunded'].includes(o.payment.status);
  const busy = o.payment && ['paying', 'pending'].includes(o.payment.status);
  $('claim').hidden = o.status !== 'open';
  const form = $('payform');
  const wasHidden = form.hidden;
  form.hidden = !(o.status === 'claimed' && !paid && !busy);
  if (wasHidden && !form.hidden) { $('code').value = ''; $('code').focus(); }
  const r = $('result');
  setClass(r, o.payment ? paymentClass(o.payment) : '');
  setText(r, o.payment ? stateText(o) : '');
}
function open(orderId) {
  current = orderId; $('error').textContent = '';
  // Show what is known at once (the tap's effect), then ask for the latest.
  const o = lastOffers.find((x) => x.orderId === orderId);
  if (o) show(o);
  refresh(true);
}
let lastOffers = [];
$('open').addEventListener('click', (ev) => {
  const card = ev.target.closest('.offer');
  if (card) open(card.dataset.order);
});
$('history').addEventListener('click', (ev) => {
  const row = ev.target.closest('tr.retry');
  if (row) open(row.dataset.order);
});
$('back').onclick = () => { current = null; $('detail').hidden = true; $('list').hidden = false; refresh(true); };
$('lang').onclick = () => { lang = lang === 'zh' ? 'en' : 'zh'; localStorage.setItem('lang', lang); labels(); refresh(true); };
$('claim').onclick = async () => {
  $('error').textContent = '';
  try { await api('POST', '/api/offers/' + encodeURIComponent(current) + '/claim'); } catch (e) { $('error').textContent = e.message; }
  refresh(true);
};
$('payform').onsubmit = async (ev) => {
  ev.preventDefault();
  const code = $('code').value.replace(${PAYMENT_CODE_SPACES}, '');
  $('error').textContent = '';
  if (!${PAYMENT_CODE_PATTERN}.test(code)) { $('error').textContent = t('badCode'); $('code').select(); return; }
  $('code').value = '';
  $('payform').hidden = true;
  $('result').className = 'wait'; $('result').textContent = t('pay.paying');
  try { await api('POST', '/api/offers/' + encodeURIComponent(current) + '/pay', { paymentCode: code }); } catch (e) { $('error').textContent = e.message; }
  refresh(true);
};
let running = null;
let again = false;
/** One poll at a time; "force" draws even when the answers did not change (language, view switched). */
function refresh(force) {
  if (force) last = { offers: '', history: '', lang: '' };
  if (running) { again = true; return running; }
  running = poll().finally(() => { running = null; if (again) { again = false; refresh(); } });
  return running;
}
async function poll() {
  try {
    const [offersText, status, historyText] = await Promise.all([
      fetch('/api/offers').then((r) => r.text()), api('GET', '/api/status'), fetch('/api/history').then((r) => r.text())]);
    const net = $('net');
    setText(net, status.server === 'up' ? t('serverUp') : t('serverDown'));
    setClass(net, status.server === 'up' ? '' : 'down');
    if (status.timeZone && status.timeZone !== zone) { zone = status.timeZone; last.lang = ''; }
    setText($('zone'), zone || '');
    // Nothing changed: leave the page alone.
    if (offersText === last.offers && historyText === last.history && lang === last.lang) return;
    last = { offers: offersText, history: historyText, lang };
    lastOffers = JSON.parse(offersText);
    render(lastOffers, JSON.parse(historyText));
  } catch (e) { setText($('net'), t('serverDown')); setClass($('net'), 'down'); }
}
/** A burst of changes (a claim, its payment, the result) is one refresh per LIVE_MS at most. */
const LIVE_MS = 50;
/** The poll behind the event stream: while the stream is down, this is how stale the page can be. */
const FALLBACK_POLL_MS = 5000;
/** How long to wait before opening a stream the unit refused (it was stopping) or that failed for good. */
const REOPEN_MS = 5000;
let live = 'connecting';
let liveTimer = null;
let liveLast = -Infinity;
function showLive() {
  setText($('live'), live === 'live' ? t('live') : live === 'down' ? t('reconnecting') : '');
  setClass($('live'), live === 'down' ? 'down' : '');
}
/** The unit said something changed: refresh now, or as soon as LIVE_MS has passed since the last. */
function changed() {
  if (liveTimer) return;
  liveTimer = setTimeout(() => { liveTimer = null; liveLast = performance.now(); refresh(); },
    Math.max(0, liveLast + LIVE_MS - performance.now()));
}
function listen() {
  if (typeof EventSource !== 'function') return;
  const events = new EventSource('/api/events');
  // (Re)connected: what changed while the stream was down was not said, so read it all once.
  events.onopen = () => { live = 'live'; showLive(); changed(); };
  events.onmessage = changed;
  events.onerror = () => {
    live = 'down'; showLive();
    // The browser retries a dropped stream by itself, but not one answered with an error (a stopping unit
    // answers 503): open a new one later.
    if (events.readyState === EventSource.CLOSED) setTimeout(listen, REOPEN_MS);
  };
}
labels();
refresh(true);
listen();
setInterval(refresh, FALLBACK_POLL_MS);
</script>
</body>
</html>
`;
