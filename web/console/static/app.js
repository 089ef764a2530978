// rtmphub console: reads the admin JSON API (api/v1/...) every 2 s while the
// tab is visible and shows the server, its live streams (with a preview
// through the player page on the HTTP port), clients, applications and
// instances, SharedObjects and the streams being recorded.
//
// The token, when the server wants one, is asked for in a form and kept in
// sessionStorage; a link may also carry it as #token=... (taken off the URL
// at once). A 401 shows the form again.
//
// Hooks for tests: rows are tr[data-stream="app/instance/name"],
// tr[data-client="id"], tr[data-instance="app/instance"], tr[data-app="app"],
// tr[data-so="app/instance/name"], tr[data-recording="app/instance/name"];
// buttons are button[data-kick="id"], button[data-stop="app/instance/name"],
// button[data-preview="app/instance/name"], button[data-reload="app"],
// button[data-unload="app/instance"]. Stop, reload and unload ask for a
// second click within 4 s ("Confirm"); kick does not. window.rtmphubConsole
// holds the last answers and a refresh() function.

const API = 'api/v1/';
const TOKEN_KEY = 'rtmphub.console.token';
const REFRESH_MS = 2000;
const ARM_MS = 4000;
const DEFAULT_INSTANCE = '_definst_';
const VIEWER_PROTOCOLS = ['rtmp', 'http-flv', 'ws-flv', 'hls'];

const $ = (sel) => document.querySelector(sel);

let token = sessionStorage.getItem(TOKEN_KEY) || '';
let paused = false;
let timer = 0;
let inFlight = null;
let loginShown = false;
let httpURL = '';
const previews = new Map(); // stream key -> preview element

const state = { server: null, apps: [], clients: [], streams: [], sharedobjects: [], updatedAt: null, error: '' };
window.rtmphubConsole = { state, refresh: () => refresh() };

class AuthError extends Error {}

// ---- API ----

async function api(method, path) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  const res = await fetch(API + path, { method, headers, cache: 'no-store' });
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON: keep the status
  }
  if (res.status === 401) throw new AuthError(body && body.error ? body.error : 'unauthorized');
  if (!res.ok) throw new Error(res.status + ' ' + (body && body.error ? body.error : res.statusText));
  return body;
}

const enc = encodeURIComponent;
const encPath = (s) => s.split('/').map(enc).join('/');
const streamKey = (s) => s.app + '/' + s.instance + '/' + s.name;

async function refresh() {
  clearTimeout(timer);
  timer = 0;
  if (inFlight) return inFlight;
  inFlight = (async () => {
    try {
      // The server first: without a valid token that is the one 401 the
      // browser logs, not five.
      const server = await api('GET', 'server');
      const [apps, clients, streams, sos, files] = await Promise.all([
        api('GET', 'apps'), api('GET', 'clients'), api('GET', 'streams'), api('GET', 'sharedobjects?slots=1'),
        api('GET', 'recordings'),
      ]);
      Object.assign(state, {
        server, apps: apps || [], clients: clients || [], streams: streams || [],
        sharedobjects: sos || [], files: files || [], updatedAt: new Date(), error: '',
      });
      showMain();
      render();
      if (!$('#banner').classList.contains('ok')) banner(''); // keep an action's message
    } catch (e) {
      if (e instanceof AuthError) {
        showLogin(token ? 'The server refused this token.' : '');
        return;
      }
      state.error = e.message;
      banner('Admin API: ' + e.message);
    } finally {
      inFlight = null;
      schedule();
    }
  })();
  return inFlight;
}

function schedule() {
  clearTimeout(timer);
  timer = 0;
  if (!paused && !document.hidden && !loginShown) timer = setTimeout(refresh, REFRESH_MS);
  updatedLabel();
}

// ---- formatting ----

function fmtBytes(n) {
  if (n == null) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(n) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + u[i];
}

function fmtRate(bps) {
  if (!bps) return '0 kb/s';
  if (bps >= 1e6) return (bps / 1e6).toFixed(2) + ' Mb/s';
  return (bps / 1e3).toFixed(0) + ' kb/s';
}

function fmtDur(sec) {
  if (sec == null || !isFinite(sec) || sec < 0) return '–';
  sec = Math.floor(sec);
  const d = Math.floor(sec / 86400), h = Math.floor(sec / 3600) % 24, m = Math.floor(sec / 60) % 60, s = sec % 60;
  const p = (x) => String(x).padStart(2, '0');
  if (d) return d + 'd ' + p(h) + 'h';
  if (h) return h + 'h ' + p(m) + 'm';
  if (m) return m + 'm ' + p(s) + 's';
  return s + 's';
}

// serverNow is the server's clock, from its start and uptime: durations
// do not depend on this browser's clock.
function serverNow() {
  const s = state.server;
  if (!s || !s.started_at) return Date.now();
  return Date.parse(s.started_at) + s.uptime_seconds * 1000;
}

function since(iso) {
  if (!iso || iso.startsWith('0001-')) return null;
  return (serverNow() - Date.parse(iso)) / 1000;
}

// ---- DOM helpers ----

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

function badge(text, cls) {
  return el('span', { class: 'badge' + (cls ? ' ' + cls : ''), text });
}

// cell returns the i-th td of tr, made with class cls when new.
function cell(tr, i, cls) {
  while (tr.cells.length <= i) tr.append(el('td'));
  const td = tr.cells[i];
  if (cls && td.className !== cls) td.className = cls;
  return td;
}

function setText(td, text, title) {
  text = text == null ? '' : String(text);
  if (td.textContent !== text || td.childElementCount) td.textContent = text;
  if (title !== undefined && td.title !== title) td.title = title;
}

// setNodes rebuilds td's children when sig changed.
function setNodes(td, sig, build) {
  if (td.dataset.sig === sig) return;
  td.dataset.sig = sig;
  td.replaceChildren(...build().filter((c) => c != null));
}

// syncRows makes tbody's rows match items, in order, keyed by attribute
// attr: rows are kept (and their buttons with them) and updated in place.
function syncRows(tbody, items, attr, keyOf, fill) {
  const old = new Map();
  for (const tr of Array.from(tbody.rows)) old.set(tr.getAttribute(attr), tr);
  let prev = null;
  for (const it of items) {
    const k = keyOf(it);
    let tr = old.get(k);
    if (tr) old.delete(k);
    else { tr = el('tr'); tr.setAttribute(attr, k); }
    fill(tr, it);
    const want = prev ? prev.nextSibling : tbody.firstChild;
    if (want !== tr) tbody.insertBefore(tr, want);
    prev = tr;
  }
  for (const tr of old.values()) tr.remove();
}

function setCount(name, n) {
  const c = document.querySelector(`[data-count="${name}"]`);
  if (c) c.textContent = String(n);
  const e = document.querySelector(`[data-empty="${name}"]`);
  if (e) e.hidden = n !== 0;
}

// ---- views ----

function render() {
  renderServer();
  renderStreams();
  renderClients();
  renderApps();
  renderSharedObjects();
  renderRecordings();
  renderPreviews();
}

function renderServer() {
  const s = state.server;
  httpURL = (s.http_url || '').replace(/\/+$/, '');
  const id = [s.version ? 'v' + s.version : '', httpURL ? 'HTTP ' + httpURL : ''].filter(Boolean).join(' · ');
  $('#server-id').textContent = id;
  $('#server-id').title = id;
  const byProto = Object.entries(s.connections_by_protocol || {}).sort()
    .map(([p, n]) => p + ' ' + n).join(' · ') || 'none';
  const cards = [
    ['version', 'Version', s.version || '–', 'started ' + new Date(s.started_at).toLocaleString()],
    ['uptime', 'Uptime', fmtDur(s.uptime_seconds), ''],
    ['connections', 'Connections', s.connections, byProto],
    ['instances', 'Instances', s.instances, s.streams + ' live stream' + (s.streams === 1 ? '' : 's')],
    ['in', 'In', fmtRate(s.bitrate_in), fmtBytes(s.bytes_in) + ' total'],
    ['out', 'Out', fmtRate(s.bitrate_out), fmtBytes(s.bytes_out) + ' total'],
    ['accepted', 'Accepted', s.connections_accepted,
      'rejected ' + s.connections_rejected + ' · auth denied ' + s.auth_denied],
    ['dropped', 'Dropped', s.dropped_messages, 'slow disconnects ' + s.slow_disconnects],
  ];
  const box = $('#server');
  for (const [key, label, value, sub] of cards) {
    let c = box.querySelector(`[data-card="${key}"]`);
    if (!c) {
      c = el('div', { class: 'card', 'data-card': key },
        el('div', { class: 'label', text: label }), el('div', { class: 'value' }), el('div', { class: 'sub' }));
      box.append(c);
    }
    c.children[1].textContent = String(value);
    c.children[1].title = String(value);
    c.children[2].textContent = sub;
    c.children[2].title = sub;
  }
}

function viewerBadges(s) {
  let v = s.viewers;
  let fallback = false;
  if (!v || typeof v !== 'object') {
    // Before the server counts viewers by protocol: its RTMP players.
    v = { rtmp: (s.players || []).length };
    fallback = true;
  }
  const keys = VIEWER_PROTOCOLS.filter((p) => p in v).concat(Object.keys(v).filter((p) => !VIEWER_PROTOCOLS.includes(p)).sort());
  const total = keys.reduce((a, k) => a + (Number(v[k]) || 0), 0);
  const sig = JSON.stringify([keys.map((k) => [k, v[k]]), fallback]);
  return { sig, total, build: () => keys.map((k) => badge(k + ' ' + v[k], v[k] ? '' : 'zero')) };
}

function previewURL(s) {
  if (!httpURL) return '';
  const inst = s.instance && s.instance !== DEFAULT_INSTANCE ? '/' + enc(s.instance) : '';
  const q = s.preview_query ? s.preview_query + '&' : ''; // a play token, when the server signs them
  return httpURL + '/' + enc(s.app) + inst + '/' + encPath(s.name) + '?' + q + 'proto=flv&embed=1';
}

function renderStreams() {
  const list = state.streams;
  setCount('streams', list.length);
  const now = serverNow();
  syncRows($('#streams-table tbody'), list, 'data-stream', streamKey, (tr, s) => {
    const key = streamKey(s);
    const live = !!(s.published_at && !s.published_at.startsWith('0001-'));
    setText(cell(tr, 0), s.app);
    setText(cell(tr, 1, 'mono'), s.instance);
    setNodes(cell(tr, 2), JSON.stringify([s.name, s.recording, s.publish_type, live]), () => [
      el('strong', { text: s.name }), ' ',
      s.recording ? badge('REC', 'rec') : null,
      live ? null : badge('not published', 'warn'),
    ]);
    setText(cell(tr, 3, 'mono'), s.publisher ? '#' + s.publisher : (live ? 'server' : '–'),
      s.publish_type ? 'publish type: ' + s.publish_type : '');
    setText(cell(tr, 4, 'num'), live ? fmtDur((now - Date.parse(s.published_at)) / 1000) : '–');
    setNodes(cell(tr, 5, 'nowrap'), JSON.stringify([s.video_codec, s.audio_codec]), () => [
      s.video_codec ? badge(s.video_codec) : null,
      s.audio_codec ? badge(s.audio_codec) : null,
      !s.video_codec && !s.audio_codec ? '–' : null,
    ]);
    setText(cell(tr, 6, 'num'), s.width ? s.width + '×' + s.height : '–');
    setText(cell(tr, 7, 'num'), s.fps ? (Math.round(s.fps * 100) / 100).toString() : '–');
    setText(cell(tr, 8, 'num'), live ? fmtRate(s.bitrate) : '–');
    setText(cell(tr, 9, 'num'), fmtBytes(s.bytes), (s.messages || 0) + ' messages');
    const vb = viewerBadges(s);
    const vc = cell(tr, 10);
    setNodes(vc, vb.sig, vb.build);
    vc.title = vb.total + ' viewer' + (vb.total === 1 ? '' : 's');
    const ac = cell(tr, 11, 'actions');
    if (!ac.firstChild) {
      ac.append(
        el('button', { type: 'button', 'data-preview': key, text: 'Preview' }),
        el('button', { type: 'button', class: 'danger', 'data-stop': key, text: 'Stop' }),
      );
    }
    const pb = ac.children[0];
    pb.disabled = !httpURL;
    pb.title = httpURL ? 'play it here through ' + httpURL : 'the server reports no http_url';
    pb.textContent = previews.has(key) ? 'Hide' : 'Preview';
    pb.setAttribute('aria-pressed', previews.has(key) ? 'true' : 'false');
    const sb = ac.children[1];
    sb.disabled = !live;
    sb.title = live ? 'unpublish: disconnects the publisher' : 'no publisher';
  });
  const note = $('#preview-note');
  note.hidden = !!httpURL || list.length === 0;
  note.textContent = 'Previews need the server\'s HTTP port, which it does not report (http_url).';
}

function renderClients() {
  const list = state.clients;
  setCount('clients', list.length);
  const now = serverNow();
  syncRows($('#clients-table tbody'), list, 'data-client', (c) => String(c.id), (tr, c) => {
    setText(cell(tr, 0, 'num'), c.id);
    setNodes(cell(tr, 1), JSON.stringify([c.protocol, c.rtmpt_session_id]), () => [
      badge(c.protocol || '?'),
    ]);
    cell(tr, 1).title = c.rtmpt_session_id ? 'RTMPT session ' + c.rtmpt_session_id : '';
    setText(cell(tr, 2, 'mono'), c.ip);
    setNodes(cell(tr, 3), JSON.stringify([c.connected, c.app, c.instance]), () => c.connected
      ? [c.app + (c.instance && c.instance !== DEFAULT_INSTANCE ? ' / ' + c.instance : '')]
      : [badge('connecting', 'warn')]);
    cell(tr, 3).title = c.connected ? c.app + '/' + c.instance : '';
    setText(cell(tr, 4, 'wrap'), c.agent || '–', c.agent || '');
    const ss = c.streams || [];
    setNodes(cell(tr, 5), JSON.stringify(ss), () => ss.length
      ? ss.map((x) => badge(x.role + ' ' + x.name, x.role === 'publish' ? 'ok' : ''))
      : ['–']);
    setText(cell(tr, 6, 'num'), fmtDur((now - Date.parse(c.connected_at)) / 1000), c.connected_at);
    setText(cell(tr, 7, 'num'), fmtBytes(c.bytes_in));
    setText(cell(tr, 8, 'num'), fmtBytes(c.bytes_out));
    const ac = cell(tr, 9, 'actions');
    if (!ac.firstChild) {
      ac.append(el('button', { type: 'button', class: 'danger', 'data-kick': String(c.id), text: 'Kick' }));
    }
  });
}

function renderApps() {
  const rows = [];
  for (const a of state.apps) {
    rows.push({ kind: 'app', app: a });
    for (const i of a.instances || []) rows.push({ kind: 'instance', app: a, inst: i });
  }
  setCount('apps', state.apps.length);
  syncRows($('#apps-table tbody'), rows, 'data-key',
    (r) => (r.kind === 'app' ? 'app:' + r.app.name : 'instance:' + r.app.name + '/' + r.inst.name), (tr, r) => {
      if (r.kind === 'app') {
        tr.setAttribute('data-app', r.app.name);
        tr.className = 'app-row';
        const n = (r.app.instances || []).length;
        const clients = (r.app.instances || []).reduce((x, i) => x + i.clients, 0);
        const streams = (r.app.instances || []).reduce((x, i) => x + i.streams, 0);
        setNodes(cell(tr, 0), r.app.name, () => [el('strong', { text: r.app.name })]);
        setText(cell(tr, 1, 'dim'), n + ' instance' + (n === 1 ? '' : 's'));
        setText(cell(tr, 2, 'num'), clients);
        setText(cell(tr, 3, 'num'), streams);
        const ac = cell(tr, 4, 'actions');
        if (!ac.firstChild) {
          ac.append(el('button', { type: 'button', class: 'danger', 'data-reload': r.app.name, text: 'Reload',
            title: 'unload every instance; the next connect runs the current main.asc' }));
        }
      } else {
        const key = r.app.name + '/' + r.inst.name;
        tr.setAttribute('data-instance', key);
        setText(cell(tr, 0), '');
        setText(cell(tr, 1, 'mono'), r.inst.name);
        setText(cell(tr, 2, 'num'), r.inst.clients);
        setText(cell(tr, 3, 'num'), r.inst.streams);
        const ac = cell(tr, 4, 'actions');
        if (!ac.firstChild) {
          ac.append(el('button', { type: 'button', class: 'danger', 'data-unload': key, text: 'Unload',
            title: 'disconnect every client of this instance' }));
        }
      }
    });
}

function renderSharedObjects() {
  const list = state.sharedobjects;
  setCount('sharedobjects', list.length);
  syncRows($('#sharedobjects-table tbody'), list, 'data-so', (o) => o.app + '/' + o.instance + '/' + o.name, (tr, o) => {
    setText(cell(tr, 0), o.app);
    setText(cell(tr, 1, 'mono'), o.instance);
    setText(cell(tr, 2, 'mono'), o.name);
    setNodes(cell(tr, 3), String(o.persistent), () => [o.persistent ? badge('persistent', 'ok') : badge('temporary')]);
    setText(cell(tr, 4, 'num'), o.version);
    setText(cell(tr, 5, 'num'), o.subscribers);
    setText(cell(tr, 6, 'num'), fmtBytes(o.size));
    const slots = fmtSlots(o.slots);
    setText(cell(tr, 7, 'mono slots'), slots.short, slots.full);
  });
}

// fmtSlots shows a SharedObject's slots as name=value pairs (values as
// JSON), cut short in the table and whole in the cell's title.
function fmtSlots(slots) {
  if (!slots) return { short: '–', full: '' };
  const parts = Object.keys(slots).sort().map((k) => k + '=' + JSON.stringify(slots[k]));
  const full = parts.join('\n');
  let short = parts.join('  ');
  if (short.length > 160) short = short.slice(0, 157) + '…';
  return { short: short || '(empty)', full };
}

function renderFiles() {
  const list = state.files || [];
  setCount('files', list.length);
  syncRows($('#files-table tbody'), list, 'data-file', (f) => f.app + '/' + f.instance + '/' + f.name, (tr, f) => {
    setText(cell(tr, 0), f.app);
    setText(cell(tr, 1, 'mono'), f.instance);
    setNodes(cell(tr, 2, 'mono'), f.name + f.recording, () => f.recording ? [badge('REC', 'rec'), ' ', f.name] : [f.name]);
    setText(cell(tr, 3, 'num'), fmtBytes(f.size));
    setText(cell(tr, 4, 'num'), new Date(f.modified).toLocaleString());
  });
}

function renderRecordings() {
  renderFiles();
  const list = state.streams.filter((s) => s.recording);
  setCount('recordings', list.length);
  const now = serverNow();
  syncRows($('#recordings-table tbody'), list, 'data-recording', streamKey, (tr, s) => {
    setText(cell(tr, 0), s.app);
    setText(cell(tr, 1, 'mono'), s.instance);
    setNodes(cell(tr, 2), s.name, () => [badge('REC', 'rec'), ' ', el('strong', { text: s.name })]);
    setText(cell(tr, 3, 'mono'), s.publish_type || '–');
    setText(cell(tr, 4, 'num'), s.published_at ? fmtDur((now - Date.parse(s.published_at)) / 1000) : '–');
    setText(cell(tr, 5, 'num'), fmtBytes(s.bytes));
    setText(cell(tr, 6, 'num'), fmtRate(s.bitrate));
  });
}

// Previews stay open while their stream is listed; an <iframe> is never
// moved in the DOM (that would reload it).
function renderPreviews() {
  const live = new Set(state.streams.map(streamKey));
  for (const [key, p] of previews) {
    if (!live.has(key) || !httpURL) closePreview(key);
    else p.hidden = false;
  }
}

function openPreview(s) {
  const key = streamKey(s);
  if (previews.has(key) || !httpURL) return;
  const url = previewURL(s);
  const p = el('div', { class: 'preview', 'data-preview-of': key },
    el('header', {},
      el('span', { text: key, title: url }),
      el('a', { href: url.replace('&embed=1', ''), target: '_blank', rel: 'noopener', text: 'open' }),
      el('button', { type: 'button', 'data-close-preview': key, text: 'Close' })),
    el('iframe', { src: url, title: 'preview of ' + key, allow: 'autoplay; fullscreen',
      sandbox: 'allow-scripts allow-same-origin', loading: 'lazy', referrerpolicy: 'no-referrer' }));
  previews.set(key, p);
  $('#previews').append(p);
}

function closePreview(key) {
  const p = previews.get(key);
  if (!p) return;
  previews.delete(key);
  const f = p.querySelector('iframe');
  if (f) f.src = 'about:blank';
  p.remove();
}

// ---- actions ----

function banner(msg, ok) {
  const b = $('#banner');
  b.textContent = msg;
  b.hidden = !msg;
  b.classList.toggle('ok', !!ok);
}

let bannerTimer = 0;
function flash(msg) {
  banner(msg, true);
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => { if ($('#banner').classList.contains('ok')) banner(''); }, 3000);
}

// arm asks for a second click within ARM_MS; it returns true on that one.
function arm(btn) {
  if (btn.classList.contains('armed')) {
    clearTimeout(Number(btn.dataset.armTimer));
    btn.classList.remove('armed');
    btn.textContent = btn.dataset.label;
    return true;
  }
  btn.dataset.label = btn.textContent;
  btn.classList.add('armed');
  btn.textContent = 'Confirm';
  btn.dataset.armTimer = String(setTimeout(() => {
    btn.classList.remove('armed');
    btn.textContent = btn.dataset.label;
  }, ARM_MS));
  return false;
}

async function act(btn, method, path, done) {
  btn.disabled = true;
  try {
    const r = await api(method, path);
    flash(done(r || {}));
  } catch (e) {
    if (e instanceof AuthError) { showLogin('The server refused this token.'); return; }
    banner(method + ' ' + path + ': ' + e.message);
  } finally {
    btn.disabled = false;
  }
  await refresh();
}

function findStream(key) {
  return state.streams.find((s) => streamKey(s) === key);
}

document.addEventListener('click', (ev) => {
  const b = ev.target.closest('button');
  if (!b || b.disabled) return;
  const d = b.dataset;
  if (d.kick !== undefined) {
    act(b, 'DELETE', 'clients/' + enc(d.kick), (r) => 'Client ' + (r.disconnected ?? d.kick) + ' disconnected.');
  } else if (d.stop !== undefined) {
    const s = findStream(d.stop);
    if (s && arm(b)) {
      act(b, 'DELETE', 'streams/' + enc(s.app) + '/' + enc(s.instance) + '/' + encPath(s.name),
        (r) => 'Stream ' + (r.stopped || d.stop) + ' stopped.');
    }
  } else if (d.reload !== undefined) {
    if (arm(b)) {
      act(b, 'POST', 'apps/' + enc(d.reload) + '/reload',
        (r) => 'Application ' + d.reload + ' reloaded (' + (r.instances ?? 0) + ' instance(s) unloaded).');
    }
  } else if (d.unload !== undefined) {
    const i = d.unload.indexOf('/');
    if (arm(b)) {
      act(b, 'DELETE', 'apps/' + enc(d.unload.slice(0, i)) + '/' + enc(d.unload.slice(i + 1)),
        (r) => 'Instance ' + d.unload + ' unloaded (' + (r.clients_disconnected ?? 0) + ' client(s) disconnected).');
    }
  } else if (d.preview !== undefined) {
    const s = findStream(d.preview);
    if (previews.has(d.preview)) closePreview(d.preview);
    else if (s) openPreview(s);
    renderStreams();
  } else if (d.closePreview !== undefined) {
    closePreview(d.closePreview);
    renderStreams();
  } else if (d.action === 'pause') {
    paused = !paused;
    b.setAttribute('aria-pressed', String(paused));
    b.textContent = paused ? 'Resume' : 'Pause';
    if (paused) schedule(); else refresh();
  } else if (d.action === 'logout') {
    token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin('');
  }
});

// ---- login ----

function showLogin(msg) {
  loginShown = true;
  document.body.classList.add('locked');
  clearTimeout(timer);
  timer = 0;
  $('#main').hidden = true;
  $('#login').hidden = false;
  $('#logout').hidden = true;
  const e = $('#login-error');
  e.textContent = msg;
  e.hidden = !msg;
  banner('');
  const input = $('#token');
  input.value = '';
  input.focus();
  updatedLabel();
}

function showMain() {
  loginShown = false;
  document.body.classList.remove('locked');
  $('#login').hidden = true;
  $('#main').hidden = false;
  $('#logout').hidden = !token;
}

$('#login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('#token').value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  loginShown = false;
  refresh();
});

function updatedLabel() {
  const u = $('#updated');
  if (loginShown) u.textContent = '';
  else if (paused) u.textContent = 'paused';
  else if (state.updatedAt) u.textContent = state.updatedAt.toLocaleTimeString([], { hour12: false });
}

document.addEventListener('visibilitychange', () => {
  if (document.hidden) { clearTimeout(timer); timer = 0; } else if (!loginShown && !paused) refresh();
});

// A link can carry the token in its fragment (#token=...), which no server
// sees; it is moved to sessionStorage and taken off the address bar.
{
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (m) {
    token = decodeURIComponent(m[1]);
    sessionStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, '', location.pathname + location.search);
  }
}

refresh();
