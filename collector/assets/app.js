// swarm-obs dashboard: a live timeline over the collector's SSE stream, which also
// pushes sessions' states and moves workers' cards; workers' verdicts, probes,
// activity and alerts polled from its REST endpoints.
//
// Every string that comes from an event is untrusted: it only ever reaches the page
// through textContent or attribute values, never as HTML.
'use strict';

(() => {
  const KINDS = ['log', 'start', 'progress', 'done', 'error', 'attention', 'heartbeat', 'hook', 'alert'];
  const FILTERS = ['source', 'session', 'agent', 'kind', 'level', 'q'];
  // Events kept in memory (and so reachable by scrolling); older ones are dropped.
  const MAX_EVENTS = 5000;
  const BACKFILL = 500;
  const ROW = 24;
  const OVERSCAN = 10;
  const POLL_WORKERS_MS = 1000;
  const POLL_PROBES_MS = 1000;
  const HOUR_MS = 3600000;
  // Hours in a probe's healthy-ratio strip.
  const PROBE_HOURS = 24;
  const POLL_ACTIVITY_MS = 5000;
  const POLL_ALERTS_MS = 2000;
  const RECONNECT_MAX_MS = 10000;

  const $ = (id) => document.getElementById(id);

  /** Builds an element; string children become text nodes, never markup. */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('data-')) node.setAttribute(k, String(v));
      else if (k === 'onclick') node.addEventListener('click', v);
      else node.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      node.append(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  /** "1 event", "2 events": a count and its noun, singular for one. */
  function count(n, noun) {
    return n + ' ' + noun + (Number(n) === 1 ? '' : 's');
  }

  // ---- token -------------------------------------------------------------------

  const TOKEN_KEY = 'swarm-obs-token';
  function readTokenFromFragment() {
    const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (m) {
      try { sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1])); } catch (_) { /* storage off */ }
      // Keep the token out of the address bar, history and bookmarks.
      history.replaceState(null, '', location.pathname + location.search);
    }
  }
  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (_) { return ''; }
  }

  // ---- filters in the URL --------------------------------------------------------

  const filters = {};

  // The kind filter is a multi-choice (`kind=error,alert`, any of them); the others
  // are one value each.
  function kindBoxes() { return [...document.querySelectorAll('#f-kind input[type=checkbox]')]; }
  function showKindChoice(value) {
    $('f-kind-summary').textContent = value ? value.split(',').join(', ') : 'any';
  }
  function controlValue(f) {
    if (f !== 'kind') return $('f-' + f).value.trim();
    return kindBoxes().filter((b) => b.checked).map((b) => b.value).join(',');
  }
  function setControl(f, value) {
    if (f !== 'kind') {
      $('f-' + f).value = value;
      return;
    }
    const picked = new Set(value.split(',').map((k) => k.trim().toLowerCase()).filter(Boolean));
    for (const b of kindBoxes()) b.checked = picked.has(b.value);
    // A name the page does not know stays as written: the collector names it.
    showKindChoice(value);
  }

  function readFiltersFromUrl() {
    const p = new URLSearchParams(location.search);
    for (const f of FILTERS) {
      filters[f] = (p.get(f) || '').trim();
      setControl(f, filters[f]);
    }
    const order = p.get('order');
    $('order').value = order === 'follow' ? 'follow' : 'newest';
    const minutes = p.get('minutes');
    if (['1', '5', '15', '60'].includes(minutes)) $('activity-minutes').value = minutes;
  }
  function writeUrl() {
    const p = new URLSearchParams();
    for (const f of FILTERS) if (filters[f]) p.set(f, filters[f]);
    if ($('order').value !== 'newest') p.set('order', $('order').value);
    if ($('activity-minutes').value !== '15') p.set('minutes', $('activity-minutes').value);
    // Commas stay readable in the address (`kind=error,alert`); they need no escape.
    const qs = p.toString().replace(/%2C/gi, ',');
    history.replaceState(null, '', location.pathname + (qs ? '?' + qs : ''));
  }
  function filterParams() {
    const p = new URLSearchParams();
    for (const f of FILTERS) if (filters[f]) p.set(f, filters[f]);
    return p;
  }

  // ---- HTTP ----------------------------------------------------------------------

  class HttpError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function getJson(path, params) {
    const qs = params && params.toString();
    const headers = {};
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    const resp = await fetch(path + (qs ? '?' + qs : ''), { headers, cache: 'no-store' });
    if (!resp.ok) {
      let msg = resp.status + ' ' + resp.statusText;
      try { msg = (await resp.json()).error || msg; } catch (_) { /* not JSON */ }
      // A refusal of a request sent before a new token was entered is stale.
      if (resp.status === 401 && t === token()) needToken();
      throw new HttpError(resp.status, msg);
    }
    return resp.json();
  }

  /** The array under `key` in the JSON answer of `path`, or an empty one. */
  async function getList(path, key, params) {
    const data = await getJson(path, params);
    return Array.isArray(data[key]) ? data[key] : [];
  }

  function needToken() {
    setConn('unauthorized', 'token needed');
    $('token-form').hidden = false;
    // Nothing was read: no panel may say "none" for what it could not ask.
    waitingForToken = true;
    workerList = [];
    probeList = [];
    alertList = [];
    sessionList = [];
    for (const name of PANELS) answered[name] = false;
    renderPanels();
    activityAsked++;
    $('activity').replaceChildren(el('p', { class: 'muted status', text: 'Waiting for the token.' }));
    $('activity-legend').replaceChildren();
  }

  // ---- side panels' state -------------------------------------------------------------

  // Each side panel says "Loading…" until its first answer (and, behind the token
  // prompt, that it waits for the token); only an answer can say there is nothing.
  const PANELS = ['workers', 'probes', 'alerts', 'sessions'];
  const answered = { workers: false, probes: false, alerts: false, sessions: false };
  let waitingForToken = false;
  function panelHas(name) {
    return (name === 'workers' ? workerList : name === 'probes' ? probeList
      : name === 'alerts' ? alertList : sessionList).length > 0;
  }
  function showPanelState(name) {
    const has = panelHas(name);
    $(name + '-empty').hidden = has || !answered[name];
    const status = $(name + '-status');
    status.hidden = has || answered[name];
    status.textContent = waitingForToken ? 'Waiting for the token.' : 'Loading…';
  }
  function renderPanels() {
    renderWorkers();
    renderProbes();
    renderAlerts();
    renderSessions();
  }

  // ---- connection indicator --------------------------------------------------------

  function setConn(state, text) {
    const c = $('conn');
    c.dataset.state = state;
    $('conn-text').textContent = text;
  }

  // ---- timeline ----------------------------------------------------------------------

  // Ordered by time, then id, oldest first, whatever order events arrive in (live,
  // backfill and resume interleave, and sources' clocks and delays differ).
  const events = [];
  const times = new Map(); // id -> ms since the epoch, for every event held
  let selectedId = null;
  let renderQueued = false;
  let lastEventId = '';
  // Whether the stream ever opened: until then a count of 0 would mislead.
  let streamOpened = false;
  // The event at the top edge of the view and how far into its row the view starts,
  // so rows arriving above it (anywhere in time) do not move what is being read.
  let anchor = null;

  function fmtTime(ts) {
    const d = new Date(ts);
    if (isNaN(d)) return String(ts || '');
    const p = (n, w) => String(n).padStart(w || 2, '0');
    return p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds()) + '.' + p(d.getMilliseconds(), 3);
  }

  const sourceClasses = new Map();
  function sourceClass(source) {
    let c = sourceClasses.get(source);
    if (c === undefined) {
      let h = 0;
      for (const ch of String(source)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
      c = 's' + (h % 10);
      sourceClasses.set(source, c);
    }
    return c;
  }
  const kindClass = (k) => (KINDS.includes(k) ? 'k-' + k : 'k-log');
  const levelClass = (l) => 'l-' + (['trace', 'debug', 'info', 'warn', 'error'].includes(l) ? l : 'info');

  /** Milliseconds of an event's `ts`; one without a readable time sorts first. */
  function timeOf(ev) {
    const t = Date.parse(ev.ts);
    return Number.isFinite(t) ? t : -Infinity;
  }

  /** Where an event of time `t` and id `id` goes in `events`: after every event
   *  before it in (time, id) order. A binary search, so thousands stay cheap. */
  function slotFor(t, id) {
    let lo = 0;
    let hi = events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = events[mid];
      const mt = times.get(m.id);
      if (mt < t || (mt === t && m.id < id)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The index of the held event of time `t` and id `id`, or -1. */
  function indexOf(t, id) {
    const i = slotFor(t, id);
    return i < events.length && events[i].id === id ? i : -1;
  }

  function addEvent(ev) {
    if (!ev || typeof ev !== 'object' || typeof ev.id !== 'string' || times.has(ev.id)) return;
    const t = timeOf(ev);
    const last = events[events.length - 1];
    // Most events are the newest yet: no search for them.
    const i = !last || times.get(last.id) < t || (times.get(last.id) === t && last.id < ev.id)
      ? events.length
      : slotFor(t, ev.id);
    times.set(ev.id, t);
    if (i === events.length) events.push(ev);
    else events.splice(i, 0, ev);
    if (events.length > MAX_EVENTS) {
      for (const old of events.splice(0, events.length - MAX_EVENTS)) times.delete(old.id);
    }
    noteWorkerEvent(ev, t);
    queueRender();
  }

  function clearTimeline() {
    events.length = 0;
    times.clear();
    lastEventId = '';
    anchor = null;
    selectedId = null;
    $('detail').hidden = true;
    queueRender();
  }

  function queueRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      renderTimeline();
    });
  }

  function following() { return $('order').value === 'follow'; }

  /** The height of a timeline row: the stylesheet's `--row`, which narrow layouts
   *  raise to fit two lines. */
  function rowHeight(box) {
    const h = parseFloat(getComputedStyle(box).getPropertyValue('--row'));
    return h > 0 ? h : ROW;
  }

  // Only the rows in view (plus a margin) exist in the DOM, so thousands of events
  // cost no more than a screenful.
  const rowPool = new Map(); // event id -> element
  let lastRowH = ROW;

  // Scrolled (by the reader, or by the page itself): the row now at the top edge,
  // as drawn, is the one to keep in place from here on.
  function onTimelineScroll() {
    const box = $('timeline');
    const top = Math.floor(box.scrollTop / lastRowH);
    anchor = null;
    for (const [id, node] of rowPool) {
      if (parseFloat(node.style.top) === top * lastRowH) {
        anchor = { id, t: times.get(id), offset: box.scrollTop / lastRowH - top };
        break;
      }
    }
    queueRender();
  }

  function renderTimeline() {
    const box = $('timeline');
    const n = events.length;
    const rowH = rowHeight(box);
    lastRowH = rowH;
    const wasAtBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - rowH * 2;
    // Newest first at the top, or following at the bottom: the view stays pinned
    // there. Anywhere else the row that was at the top edge stays at it, wherever
    // new events were put in between.
    const pinned = following() ? wasAtBottom : box.scrollTop <= 0;
    const at = pinned || !anchor ? -1 : indexOf(anchor.t, anchor.id);
    $('timeline-spacer').style.height = n * rowH + 'px';
    if (following() && pinned) box.scrollTop = box.scrollHeight;
    else if (at >= 0) {
      const pos = following() ? at : n - 1 - at;
      box.scrollTop = (pos + anchor.offset) * rowH;
    }
    const top = Math.max(0, Math.floor(box.scrollTop / rowH));
    const edge = following() ? events[top] : events[n - 1 - top];
    anchor = edge ? { id: edge.id, t: times.get(edge.id), offset: box.scrollTop / rowH - top } : null;
    const first = Math.max(0, top - OVERSCAN);
    const last = Math.min(n, Math.ceil((box.scrollTop + box.clientHeight) / rowH) + OVERSCAN);
    const wanted = new Set();
    for (let pos = first; pos < last; pos++) {
      const ev = following() ? events[pos] : events[n - 1 - pos];
      const key = ev.id;
      wanted.add(key);
      let node = rowPool.get(key);
      if (!node) {
        node = renderRow(ev);
        rowPool.set(key, node);
        box.append(node);
      }
      node.style.top = pos * rowH + 'px';
      node.classList.toggle('selected', key === selectedId);
      node.classList.toggle('linked', linkedTool !== null && toolUseIdOf(ev) === linkedTool);
    }
    for (const [key, node] of rowPool) {
      if (!wanted.has(key)) {
        node.remove();
        rowPool.delete(key);
      }
    }
    $('count').textContent = !streamOpened && n === 0 ? ''
      : n >= MAX_EVENTS ? n + '+ events (oldest dropped)' : count(n, 'event');
  }

  function renderRow(ev) {
    const hookTool = [ev.hook, ev.tool].filter(Boolean).join(' · ');
    const badges = el('span', { class: 'c-kind' },
      el('span', { class: 'badge ' + kindClass(ev.kind), text: String(ev.kind || '') }));
    if (ev.level && ev.level !== 'info') {
      badges.append(el('span', { class: 'badge ' + levelClass(ev.level), text: String(ev.level) }));
    }
    const row = el('div', {
      class: 'row ' + levelClass(ev.level).replace('l-', 'lvl-'),
      role: 'listitem',
      tabindex: '0',
      'data-id': ev.id,
      'data-source': String(ev.source || ''),
      'data-tool-use-id': toolUseIdOf(ev),
      onclick: () => select(ev.id),
    },
    el('span', { class: 'c-time', title: String(ev.ts || ''), text: fmtTime(ev.ts) }),
    el('span', { class: 'c-src ' + sourceClass(ev.source), title: String(ev.source || ''), text: String(ev.source || '') }),
    badges,
    el('span', { class: 'c-tool', title: hookTool, text: hookTool }),
    el('span', { class: 'c-msg', title: String(ev.msg || ''), text: String(ev.msg || '') }));
    row.addEventListener('keydown', (e) => { if (e.key === 'Enter') select(ev.id); });
    return row;
  }

  function select(id) {
    selectedId = id;
    const ev = events.find((e) => e.id === id);
    if (!ev) return;
    const body = $('detail-body');
    body.replaceChildren();
    const dl = el('dl');
    for (const [k, v] of Object.entries(ev)) {
      if (k === 'payload' || k === 'fields' || k === 'progress') continue;
      dl.append(el('dt', { text: k }), el('dd', { text: typeof v === 'object' ? JSON.stringify(v) : String(v) }));
    }
    if (ev.progress) dl.append(el('dt', { text: 'progress' }), el('dd', { text: ev.progress.done + ' / ' + ev.progress.total }));
    body.append(dl);
    for (const k of ['fields', 'payload']) {
      if (ev[k] !== undefined) body.append(el('h2', { text: k }), el('div', { class: 'json' }, jsonTree(ev[k], 0)));
    }
    $('detail').hidden = false;
    queueRender();
  }

  /** A collapsible view of a JSON value, built from text nodes only. */
  function jsonTree(value, depth, key) {
    const label = key === undefined ? [] : [el('span', { class: 'key', text: JSON.stringify(key) }), ': '];
    if (value !== null && typeof value === 'object') {
      const isArray = Array.isArray(value);
      const entries = Object.entries(value);
      const node = el('details', depth < 2 ? { open: '' } : {},
        el('summary', {}, ...label, isArray ? '[' + entries.length + ']' : '{' + entries.length + '}'));
      for (const [k, v] of entries) node.append(jsonTree(v, depth + 1, isArray ? undefined : k));
      return node;
    }
    const cls = typeof value === 'string' ? 'str' : typeof value === 'number' ? 'num' : 'lit';
    return el('div', { class: 'leaf' }, ...label, el('span', { class: cls, text: JSON.stringify(value) }));
  }

  // ---- live stream -----------------------------------------------------------------

  let source = null;
  let retryMs = 500;
  let retryTimer = null;

  function connect() {
    if (source) source.close();
    clearTimeout(retryTimer);
    const p = filterParams();
    p.set('n', String(BACKFILL));
    // Sessions whose state moves arrive on the stream too: no polling for them.
    p.set('states', '1');
    // Resume after the last event seen, so a reconnect neither loses nor repeats.
    if (lastEventId) p.set('last_event_id', lastEventId);
    if (token()) p.set('access_token', token());
    setConn(lastEventId ? 'reconnecting' : 'connecting', lastEventId ? 'reconnecting…' : 'connecting…');
    const es = new EventSource('/v1/stream?' + p.toString());
    source = es;
    es.onopen = () => {
      retryMs = 500;
      setConn('live', 'live');
      if (!streamOpened) {
        streamOpened = true;
        queueRender();
      }
      // States that moved while no stream was open were pushed to nobody: read the
      // list once per (re)connection; from here on the stream keeps it current.
      refreshSessions();
    };
    const onEvent = (m) => {
      if (m.lastEventId) lastEventId = m.lastEventId;
      let ev;
      try { ev = JSON.parse(m.data); } catch (_) { return; }
      addEvent(ev);
    };
    for (const k of KINDS) es.addEventListener(k, onEvent);
    es.addEventListener('message', onEvent);
    es.addEventListener('session', (m) => {
      let s;
      try { s = JSON.parse(m.data); } catch (_) { return; }
      if (!s || typeof s.session !== 'string') return;
      const i = sessionList.findIndex((x) => x.session === s.session);
      if (i >= 0) {
        if (newer(sessionList[i], s)) return;
        sessionList[i] = s;
      } else {
        sessionList.unshift(s);
      }
      sessionList.sort((a, b) => Date.parse(b.last_seen) - Date.parse(a.last_seen));
      renderSessions();
      sessionMoved(s.session);
    });
    // Fell behind the live stream: resume from the last event seen, so the missed
    // events come from the store instead of being lost.
    es.addEventListener('lagged', () => connect());
    es.onerror = (e) => {
      // Events of kind `error` arrive as SSE events named "error", which the
      // browser dispatches like a connection error: those carry data, and are events.
      if (e instanceof MessageEvent || source !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (a refused connection or an error status). Ask the
        // same question as a plain GET to learn why: a rejected filter or a missing
        // token will not heal by retrying; anything else is retried with backoff,
        // resuming from the last event seen.
        es.close();
        setConn('offline', 'offline — retrying');
        const probe = filterParams();
        probe.set('limit', '1');
        getJson('/v1/events', probe).then(() => 'retry', (e) => {
          if (e.status === 400) {
            $('filter-error').textContent = e.message;
            setConn('offline', 'filter rejected');
            return 'stop';
          }
          return e.status === 401 ? 'stop' : 'retry';
        }).then((next) => {
          if (next !== 'retry' || source !== es) return;
          retryTimer = setTimeout(connect, retryMs);
          retryMs = Math.min(retryMs * 2, RECONNECT_MAX_MS);
        });
      } else {
        // The browser reconnects by itself and sends Last-Event-ID.
        setConn('reconnecting', 'reconnecting…');
      }
    };
  }

  function applyFilters() {
    const next = {};
    for (const f of FILTERS) next[f] = controlValue(f);
    showKindChoice(next.kind);
    // The collector checks the regex (its syntax is Rust's); its answer is shown
    // if it refuses it.
    $('filter-error').textContent = '';
    Object.assign(filters, next);
    writeUrl();
    clearTimeline();
    connect();
    refreshActivity();
    renderSessions();
    renderProbes();
  }

  // ---- workers -------------------------------------------------------------------

  // The verdicts (alive, late, down, …) come from polling /v1/workers, which only
  // the collector can judge; what a worker does (task, action, progress, an error as
  // its last word) moves its card as its events arrive on the stream, at once,
  // rather than at its next beat.
  const workerStates = new Map();
  let workerList = [];
  // When each listed worker's last beat was, by this browser's clock.
  const beatSince = new WeakMap();
  // What the stream said about a worker after its last beat, by source and host
  // ('' for events without a host): { t, task, action, progress } (each undefined
  // when no event said it; progress null when a start cleared it).
  const workerNews = new Map();
  // A worker whose last word was an error: { t, msg }, until a later word.
  const workerErrors = new Map();
  const WORK_KINDS = ['start', 'progress', 'done', 'heartbeat'];

  async function refreshWorkers() {
    try {
      const list = await getList('/v1/workers', 'workers');
      const now = Date.now();
      for (const w of list) beatSince.set(w, now - Number(w.age_ms));
      workerList = list;
      answered.workers = true;
      // News of sources that are no workers is not kept.
      const names = new Set(list.map((w) => String(w.worker)));
      for (const m of [workerNews, workerErrors]) {
        for (const key of m.keys()) if (!names.has(key.split('\n')[0])) m.delete(key);
      }
      renderWorkers();
    } catch (_) { /* the connection indicator says why */ }
  }

  const newsKey = (source, host) => String(source) + '\n' + (host ? String(host) : '');

  /** Milliseconds of a listed worker's last beat, or -Infinity. */
  function beatTime(w) {
    const t = Date.parse((w.heartbeat || {}).timestamp);
    return Number.isFinite(t) ? t : -Infinity;
  }

  /** The newest beat listed for `source` (on `host`, when the event names one). */
  function lastBeatOf(source, host) {
    let last = -Infinity;
    for (const w of workerList) {
      if (String(w.worker) === source && (!host || String(w.host) === host)) last = Math.max(last, beatTime(w));
    }
    return last;
  }

  function validProgress(p) {
    return p && typeof p === 'object' && Number(p.total) > 0 && Number(p.done) >= 0;
  }

  /** Moves a worker's card with one of its events, the way the worker's own
   *  heartbeat follows them: start sets the task and clears the progress, progress
   *  sets it and the action, done the action; an error is its last word until
   *  another word of info or above. Older news than the card holds changes nothing. */
  function noteWorkerEvent(ev, t) {
    if (typeof ev.source !== 'string' || !Number.isFinite(t)) return;
    const source = ev.source;
    const host = typeof ev.host === 'string' ? ev.host : '';
    // Once the workers are known, other sources' events are no worker's news.
    if (answered.workers && !workerList.some((w) => String(w.worker) === source)) return;
    const key = newsKey(source, host);
    let changed = false;
    const isError = ev.kind === 'error' || ev.level === 'error';
    const err = workerErrors.get(key);
    if (isError) {
      if (!err || err.t <= t) {
        workerErrors.set(key, { t, msg: String(ev.msg || '') });
        changed = true;
      }
    } else if (err && err.t <= t && ['info', 'warn'].includes(String(ev.level || 'info'))) {
      workerErrors.delete(key);
      changed = true;
    }
    if (WORK_KINDS.includes(ev.kind)) {
      const beat = lastBeatOf(source, host);
      let news = workerNews.get(key);
      if (news && news.t <= beat) news = undefined;
      if (t > beat && (!news || news.t <= t)) {
        news = news || { t };
        news.t = t;
        const msg = String(ev.msg || '');
        if (ev.task) news.task = String(ev.task);
        if (ev.kind === 'start') {
          news.task = String(ev.task || msg);
          news.action = msg;
          news.progress = null;
        } else if (ev.kind === 'progress' || ev.kind === 'done') {
          news.action = msg;
        }
        if (ev.kind !== 'start' && validProgress(ev.progress)) {
          news.progress = { done: Number(ev.progress.done), total: Number(ev.progress.total) };
        }
        workerNews.set(key, news);
        changed = true;
      }
    }
    if (changed) queueWorkers();
  }

  /** The newest of the entries of `m` for worker `w` (by its host, or by none). */
  function newestFor(m, w) {
    const a = m.get(newsKey(w.worker, w.host));
    const b = m.get(newsKey(w.worker, ''));
    return !a ? b : !b ? a : (b.t > a.t ? b : a);
  }

  let workersQueued = false;
  function queueWorkers() {
    if (workersQueued) return;
    workersQueued = true;
    requestAnimationFrame(() => {
      workersQueued = false;
      renderWorkers();
    });
  }

  function ageText(ms) {
    const s = Math.max(0, ms) / 1000;
    if (s < 60) return s.toFixed(1) + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    return Math.floor(s / 3600) + ' h ago';
  }

  function renderWorkers() {
    const ul = $('workers');
    ul.replaceChildren();
    showPanelState('workers');
    for (const w of workerList) {
      const key = String(w.host) + '/' + String(w.worker);
      const state = String(w.state || '');
      const prev = workerStates.get(key);
      workerStates.set(key, { state, changedAt: prev && prev.state !== state ? Date.now() : (prev ? prev.changedAt : 0) });
      const hb = w.heartbeat || {};
      // News from the stream that is newer than the beat wins over it.
      const fresh = newestFor(workerNews, w);
      const news = fresh && fresh.t > beatTime(w) ? fresh : {};
      const task = news.task !== undefined ? news.task : hb.task;
      const action = news.action !== undefined ? news.action : hb.action;
      const p = news.progress !== undefined ? news.progress : hb.progress;
      const what = [task, action].filter(Boolean).map(String).join(' — ');
      const li = el('li', {
        'data-worker': String(w.worker),
        'data-host': String(w.host),
        'data-state': state,
        title: String(w.worker) + ' on ' + String(w.host) + ' (' + String(w.via) + ')',
      },
      el('span', { class: 'light', 'data-state': state, role: 'img', 'aria-label': state }),
      el('span', { class: 'name', text: String(w.worker) }),
      el('span', { class: 'state st-' + state },
        el('span', { text: state + (hb.exit_code != null ? ' (exit ' + Number(hb.exit_code) + ')' : '') + ' · ' }),
        tickingAge(beatSince.has(w) ? beatSince.get(w) : Date.now() - Number(w.age_ms), 'ago')));
      if (what) li.append(el('span', { class: 'what', title: what, text: what }));
      const err = newestFor(workerErrors, w);
      if (err) li.append(el('span', { class: 'what last-error', title: err.msg, text: 'error: ' + err.msg }));
      if (p && Number(p.total) > 0) {
        li.append(el('progress', { max: Number(p.total), value: Math.min(Number(p.done), Number(p.total)), title: p.done + ' / ' + p.total }));
      }
      const changed = workerStates.get(key).changedAt;
      if (changed && Date.now() - changed < 5000) li.classList.add('changed');
      ul.append(li);
    }
  }

  // Ages tick between polls: each `.age` holds the moment it counts from (by this
  // browser's clock) and how to say it.
  function ageSpanText(ms, format) {
    return format === 'for' ? duration(Math.max(0, ms)) : ageText(ms);
  }
  function tickingAge(since, format) {
    return el('span', {
      class: 'age',
      'data-since': String(since),
      'data-format': format,
      text: ageSpanText(Date.now() - since, format),
    });
  }
  function tickAges() {
    const now = Date.now();
    for (const a of document.querySelectorAll('.age[data-since]')) {
      a.textContent = ageSpanText(now - Number(a.dataset.since), a.dataset.format);
    }
  }

  // ---- probes --------------------------------------------------------------------

  let probeList = [];

  async function refreshProbes() {
    try {
      probeList = await getList('/v1/probes', 'probes');
      answered.probes = true;
      renderProbes();
    } catch (_) { /* the connection indicator says why */ }
  }

  /** Epoch milliseconds of `ts` (an RFC 3339 time from the collector), or null. */
  function parseTime(ts) {
    const t = Date.parse(ts);
    return isNaN(t) ? null : t;
  }

  // Rounded down, so that an hour with one failure never reads 100%.
  function percent(ratio) {
    // The small nudge keeps 0.57 * 1000 (569.99…) from flooring to 56.9.
    const p = Math.floor(Number(ratio) * 1000 + 1e-6) / 10;
    return (Number.isInteger(p) ? p.toFixed(0) : p.toFixed(1)) + '%';
  }

  /** The healthy ratio of each of the last hours as a bar strip: the healthy share
   *  of a bar is green, the failing share red, an hour without checks a grey tick;
   *  every bar has a title and the strip a summary for screen readers. */
  function probeStrip(rollup) {
    const byHour = new Map();
    for (const r of Array.isArray(rollup) ? rollup : []) {
      const t = parseTime(r.hour);
      if (t !== null) byHour.set(t, r);
    }
    const W = 240;
    const H = 18;
    const bw = W / PROBE_HOURS;
    const thisHour = Date.now() - (Date.now() % HOUR_MS);
    const strip = svg('svg', { class: 'strip', viewBox: `0 0 ${W} ${H}`, role: 'img', preserveAspectRatio: 'none' });
    let checks = 0;
    let healthy = 0;
    let failingHours = 0;
    for (let i = 0; i < PROBE_HOURS; i++) {
      const hour = thisHour - (PROBE_HOURS - 1 - i) * HOUR_MS;
      const r = byHour.get(hour);
      const x = i * bw + 0.5;
      const w = Math.max(1, bw - 1);
      const g = svg('g', { 'data-hour': new Date(hour).toISOString() });
      const tt = svg('title');
      const span = fmtTime(hour).slice(0, 5) + '–' + fmtTime(hour + HOUR_MS).slice(0, 5);
      const n = r ? Number(r.checks) || 0 : 0;
      if (n > 0) {
        const ok = Math.min(n, Number(r.healthy) || 0);
        checks += n;
        healthy += ok;
        if (ok < n) failingHours++;
        const okH = (ok / n) * H;
        if (okH < H) g.append(svg('rect', { class: 'h-bad', x, y: 0, width: w, height: H - okH }));
        if (okH > 0) g.append(svg('rect', { class: 'h-ok', x, y: H - okH, width: w, height: okH }));
        tt.textContent = span + ': ' + percent(ok / n) + ' healthy (' + ok + ' of ' + n + ' checks)';
      } else {
        g.append(svg('rect', { class: 'h-none', x, y: H - 2, width: w, height: 2 }));
        tt.textContent = span + ': no checks';
      }
      g.append(svg('rect', { x: i * bw, y: 0, width: bw, height: H, fill: 'transparent' }));
      g.prepend(tt);
      strip.append(g);
    }
    const summary = checks > 0
      ? 'Healthy ' + percent(healthy / checks) + ' of ' + checks + ' checks in the last ' + PROBE_HOURS + ' h'
        + (failingHours ? ', failures in ' + failingHours + (failingHours === 1 ? ' hour' : ' hours') : '')
      : 'No checks in the last ' + PROBE_HOURS + ' h';
    strip.setAttribute('aria-label', summary);
    return { strip, summary, ratio: checks > 0 ? healthy / checks : null };
  }

  function renderProbes() {
    const ul = $('probes');
    ul.replaceChildren();
    showPanelState('probes');
    for (const p of probeList) {
      if (!p || typeof p !== 'object') continue;
      const name = String(p.name ?? '');
      const kind = String(p.kind ?? '');
      const target = String(p.target ?? '');
      // No state until the first check has run.
      const state = p.state ? String(p.state) : 'pending';
      const check = p.last_check || {};
      const checked = parseTime(check.ts);
      const moved = parseTime((p.last_transition || {}).ts);
      const { strip, summary, ratio } = probeStrip(p.rollup);
      const li = el('li', {
        'data-probe': name,
        'data-state': state,
        class: filters.source === name ? 'selected' : '',
        tabindex: '0',
        title: 'Show only this probe\'s events in the timeline (click again to show all)',
        onclick: () => {
          $('f-source').value = filters.source === name ? '' : name;
          applyFilters();
        },
      },
      el('span', { class: 'light', 'data-state': state, role: 'img', 'aria-label': state }),
      el('span', { class: 'name', text: name }),
      el('span', { class: 'state st-' + state },
        el('span', { text: state }),
        moved !== null ? ' for ' : null,
        moved !== null ? el('span', { class: 'since' }, tickingAge(moved, 'for')) : null),
      el('span', { class: 'target', title: target },
        el('span', { class: 'badge kind', text: kind }), ' ',
        el('span', { class: 'mono', text: target.startsWith(kind + ':') && !target.includes('://') ? target.slice(kind.length + 1) : target })),
      el('span', { class: 'what', title: String(check.detail || '') },
        check.detail === undefined ? 'not checked yet' : String(check.detail) + (checked !== null ? ' · checked ' : ''),
        checked !== null ? el('span', { class: 'checked' }, tickingAge(checked, 'ago')) : null),
      el('span', { class: 'ratio', title: summary },
        strip,
        el('span', { class: 'ratio-text', text: ratio === null ? '–' : percent(ratio) })));
      li.addEventListener('keydown', (e) => { if (e.key === 'Enter') li.click(); });
      ul.append(li);
    }
  }

  // ---- sessions ------------------------------------------------------------------

  let sessionList = [];
  // Whether `a` is a later state of a session than `b` (a pushed state and the
  // listed one may cross in flight).
  function newer(a, b) {
    const ta = Date.parse(a.last_seen), tb = Date.parse(b.last_seen);
    return ta > tb || (ta === tb && Number(a.events) > Number(b.events));
  }
  async function refreshSessions() {
    try {
      const listed = await getList('/v1/sessions', 'sessions', new URLSearchParams({ limit: '50' }));
      const held = new Map(sessionList.map((s) => [s.session, s]));
      sessionList = listed.map((s) => {
        const h = held.get(s.session);
        return h && newer(h, s) ? h : s;
      });
      answered.sessions = true;
      renderSessions();
      renderSessionLanes();
    } catch (_) { /* the connection indicator says why */ }
  }

  function duration(ms) {
    const s = Math.round(Number(ms) / 1000);
    if (!(s >= 0)) return '';
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  }

  const STATE_LABELS = {
    working: 'working',
    needs_permission: 'needs permission',
    waiting: 'waiting',
    ended: 'ended',
    failed: 'failed',
    dead: 'dead',
    stale: 'stale',
  };

  // A session's traffic light: the state, how long it has lasted, and the tool.
  function stateBadge(s) {
    const state = STATE_LABELS[s.state] ? s.state : 'waiting';
    const since = Date.parse(s.since);
    const age = Number.isFinite(since) ? duration(Math.max(0, Date.now() - since)) : '';
    let text = STATE_LABELS[state];
    if (state === 'needs_permission') text += (s.tool ? ' for ' + String(s.tool) : '') + ' · ' + age;
    else if (state === 'working' && s.tool) text += ' · ' + String(s.tool) + ' · ' + age;
    else text += ' · ' + age;
    return el('span', { class: 'state-badge state-' + state, title: s.reason ? String(s.reason) : '', text });
  }

  function renderSessions() {
    const ul = $('sessions');
    ul.replaceChildren();
    showPanelState('sessions');
    for (const s of sessionList) {
      const id = String(s.session);
      const start = Date.parse(s.first_seen);
      const span = Math.max(1, Date.parse(s.last_seen) - start);
      const tools = Object.entries(s.tools || {}).sort((a, b) => b[1] - a[1]);
      const toolCount = tools.reduce((n, [, c]) => n + Number(c), 0);
      const meta = [
        (s.sources || []).join(', '),
        duration(s.duration_ms),
        count(s.events, 'event'),
        count(toolCount, 'tool call'),
      ];
      const li = el('li', {
        'data-session': id,
        class: filters.session === id ? 'selected' : '',
        tabindex: '0',
        title: 'Open this session, with only its events in the timeline (click again to close it and show all)',
        onclick: () => sessionClicked(id),
      },
      el('div', { class: 'top' },
        el('span', { class: 'id', text: id.slice(0, 8) }),
        stateBadge(s),
        Number(s.errors) > 0 ? el('span', { class: 'errors', text: count(s.errors, 'error') }) : null),
      el('div', { class: 'meta', text: meta.filter(Boolean).join(' · ') }));
      li.addEventListener('keydown', (e) => { if (e.key === 'Enter') li.click(); });
      // The last prompt and the main agent's last answer, kept with the state.
      const main = (s.agents || []).find((a) => a && !a.agent);
      if (s.prompt) {
        li.append(el('div', { class: 'meta exchange prompt', title: 'last prompt', text: '» ' + String(s.prompt) }));
      }
      if (main && main.last_message) {
        li.append(el('div', { class: 'meta exchange said', title: 'last answer', text: '« ' + String(main.last_message) }));
      }
      const t = s.telemetry;
      if (t && typeof t === 'object') {
        const tokens = ['input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_creation_tokens']
          .reduce((n, k) => n + (Number(t[k]) || 0), 0);
        const parts = [];
        if (t.cost_usd !== undefined) parts.push('$' + Number(t.cost_usd).toFixed(4));
        parts.push(tokens.toLocaleString() + ' tokens (' + (Number(t.input_tokens) || 0).toLocaleString() + ' in, ' + (Number(t.output_tokens) || 0).toLocaleString() + ' out)');
        if (t.api_requests !== undefined) parts.push(count(t.api_requests, 'API request'));
        li.append(el('div', { class: 'meta telemetry', text: parts.join(' · ') }));
      }
      if (tools.length) {
        li.append(el('div', { class: 'meta', text: tools.slice(0, 6).map(([n, c]) => n + ' ' + c).join(', ') }));
      }
      const lanes = el('div', { class: 'lanes' });
      for (const a of s.agents || []) {
        const name = a.agent ? String(a.agent_type || 'subagent') + ' ' + String(a.agent).slice(0, 6) : 'main';
        const left = (Date.parse(a.first_seen) - start) / span;
        const width = (Date.parse(a.last_seen) - Date.parse(a.first_seen)) / span;
        const bar = el('span', {
          class: 'span' + (Number(a.errors) > 0 ? ' has-errors' : ''),
          title: name + ': ' + [count(a.events, 'event'), count(a.tool_calls, 'tool call'), count(a.errors, 'error')].join(', ')
            + (a.last_message ? '\n« ' + String(a.last_message) : ''),
        });
        bar.style.left = (Math.max(0, Math.min(1, left)) * 100).toFixed(2) + '%';
        bar.style.width = (Math.max(0, Math.min(1, width)) * 100).toFixed(2) + '%';
        lanes.append(el('div', { class: 'lane', 'data-agent': a.agent ? String(a.agent) : 'main' },
          el('span', { class: 'light state-' + (STATE_LABELS[a.state] ? a.state : 'waiting'), title: STATE_LABELS[a.state] || '' }),
          el('span', { class: 'label', title: name, text: name + ' · ' + a.tool_calls }),
          el('span', { class: 'track' }, bar)));
      }
      li.append(lanes);
      ul.append(li);
    }
  }

  // ---- session view ----------------------------------------------------------------

  // A session's story: its agents' lanes and the conversation of one of them, read
  // from Claude Code's transcript by the collector on request (never stored),
  // paged back with `before` and kept current with `after` while the view is open.
  // The timeline stays filtered to the session meanwhile, and each tool call leads
  // to its PreToolUse/PostToolUse events there (same tool_use_id).
  const SV_PAGE = 50;
  const SV_POLL_MS = 3000;
  const sv = {
    id: null,
    agent: 'main',
    turns: [],
    nextBefore: null,
    nextAfter: null,
    // Bumped on every open and agent switch: answers to an older question are dropped.
    gen: 0,
    busy: false,
    timer: null,
    soon: null,
  };
  // The tool_use_id whose events are highlighted in the timeline.
  let linkedTool = null;

  const agentKey = (a) => (a && a.agent ? String(a.agent) : 'main');
  const agentName = (a) => (a && a.agent ? String(a.agent_type || 'subagent') + ' ' + String(a.agent).slice(0, 8) : 'main');
  const toolUseIdOf = (ev) => (ev.tool_use_id ? String(ev.tool_use_id)
    : ev.payload && typeof ev.payload.tool_use_id === 'string' ? ev.payload.tool_use_id : null);

  /** A session picked in the sessions panel: its view opens and the timeline shows
   *  only it; picked again while open, both go (every event shows again). */
  function sessionClicked(id) {
    if (sv.id === id) {
      closeSessionView();
      if (filters.session === id) {
        $('f-session').value = '';
        applyFilters();
      }
      return;
    }
    if (filters.session !== id) {
      $('f-session').value = id;
      applyFilters();
    }
    openSessionView(id);
  }

  function openSessionView(id) {
    sv.id = id;
    sv.agent = 'main';
    $('sv-id').textContent = id;
    $('session-view').hidden = false;
    renderSessionLanes();
    loadConversation();
    clearInterval(sv.timer);
    sv.timer = setInterval(pollConversation, SV_POLL_MS);
    $('sv-close').focus();
  }

  function closeSessionView() {
    if (sv.id === null) return;
    sv.id = null;
    sv.gen++;
    clearInterval(sv.timer);
    clearTimeout(sv.soon);
    sv.timer = null;
    $('session-view').hidden = true;
    linkedTool = null;
    queueRender();
    renderSessions();
  }

  function telemetryText(t) {
    if (!t || typeof t !== 'object') return '';
    const tokens = ['input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_creation_tokens']
      .reduce((n, k) => n + (Number(t[k]) || 0), 0);
    return '$' + (Number(t.cost_usd) || 0).toFixed(4) + ' · ' + tokens.toLocaleString() + ' tokens';
  }

  /** The session's agents, as the sessions list holds them (kept current by the
   *  stream): state, tool calls, errors, the last message, cost when known. */
  function renderSessionLanes() {
    if (sv.id === null) return;
    const s = sessionList.find((x) => x.session === sv.id);
    $('sv-state').replaceChildren(s ? stateBadge(s) : '');
    const agents = s && Array.isArray(s.agents) && s.agents.length ? s.agents : [{}];
    $('sv-lanes').replaceChildren(...agents.map((a) => {
      const key = agentKey(a);
      const state = STATE_LABELS[a.state] ? a.state : null;
      const li = el('li', {
        class: 'sv-lane' + (key === sv.agent ? ' current' : ''),
        'data-agent': key,
        tabindex: '0',
        title: 'Show this agent\'s conversation',
        onclick: () => switchAgent(key),
      },
      el('div', {},
        el('span', { class: 'name', text: agentName(a) }),
        state ? el('span', { class: 'state-badge state-' + state, text: STATE_LABELS[state] + (a.tool ? ' · ' + String(a.tool) : '') }) : null),
      el('div', { class: 'meta' },
        el('span', { class: 'calls', text: count(Number(a.tool_calls) || 0, 'tool call') }),
        ' · ',
        el('span', { class: Number(a.errors) > 0 ? 'errors' : '', text: count(Number(a.errors) || 0, 'error') }),
        ' · ',
        el('span', { text: count(Number(a.events) || 0, 'event') }),
        a.telemetry ? ' · ' : null,
        a.telemetry ? el('span', { class: 'telemetry', text: telemetryText(a.telemetry) }) : null,
        a.reason ? el('span', { text: ' · ' + String(a.reason) }) : null));
      if (a.last_message) li.append(el('div', { class: 'meta said', text: '« ' + String(a.last_message) }));
      li.addEventListener('keydown', (e) => { if (e.key === 'Enter') li.click(); });
      return li;
    }));
    // No telemetry at all: say once, here, how Claude Code sends it.
    $('sv-cost-origin').textContent = location.origin;
    $('sv-cost-hint').hidden = !s || Boolean(s.telemetry) || agents.some((a) => a.telemetry);
    renderAgentSwitcher(agents);
  }

  function renderAgentSwitcher(agents) {
    $('sv-agents').replaceChildren(...agents.map((a) => el('button', {
      type: 'button',
      'data-agent': agentKey(a),
      'aria-pressed': agentKey(a) === sv.agent ? 'true' : 'false',
      text: agentName(a),
      onclick: () => switchAgent(agentKey(a)),
    })));
  }

  function switchAgent(key) {
    if (sv.id === null || key === sv.agent) return;
    sv.agent = key;
    renderSessionLanes();
    loadConversation();
  }

  function conversationParams(extra) {
    const p = new URLSearchParams({ limit: String(SV_PAGE) });
    if (sv.agent !== 'main') p.set('agent', sv.agent);
    for (const [k, v] of Object.entries(extra || {})) p.set(k, String(v));
    return p;
  }
  const conversationPath = () => '/v1/sessions/' + encodeURIComponent(sv.id) + '/conversation';

  /** The newest page of the current agent's conversation, replacing what is shown. */
  async function loadConversation(quiet) {
    const gen = ++sv.gen;
    sv.busy = true;
    if (!quiet) {
      sv.turns = [];
      sv.nextBefore = null;
      sv.nextAfter = null;
      $('sv-turns').replaceChildren();
      $('sv-notes').textContent = '';
      $('sv-error').hidden = true;
      $('sv-older').hidden = true;
      $('sv-status').textContent = 'Reading the transcript…';
    }
    try {
      const page = await getJson(conversationPath(), conversationParams());
      if (gen !== sv.gen) return;
      takePage(page, 'replace');
    } catch (e) {
      if (gen === sv.gen) showConversationError(e);
    } finally {
      if (gen === sv.gen) sv.busy = false;
    }
  }

  async function olderTurns() {
    if (sv.id === null || sv.nextBefore === null || sv.busy) return;
    const gen = sv.gen;
    sv.busy = true;
    $('sv-older').disabled = true;
    try {
      const page = await getJson(conversationPath(), conversationParams({ before: sv.nextBefore }));
      if (gen === sv.gen) takePage(page, 'older');
    } catch (e) {
      if (gen === sv.gen) showConversationError(e);
    } finally {
      if (gen === sv.gen) sv.busy = false;
      $('sv-older').disabled = false;
    }
  }

  /** Turns written since the newest shown (or, with none shown yet, the newest page). */
  async function pollConversation() {
    if (sv.id === null || sv.busy) return;
    if (sv.nextAfter === null) {
      loadConversation(true);
      return;
    }
    const gen = sv.gen;
    sv.busy = true;
    try {
      const page = await getJson(conversationPath(), conversationParams({ after: sv.nextAfter }));
      if (gen === sv.gen) takePage(page, 'newer');
    } catch (e) {
      if (gen === sv.gen) showConversationError(e);
    } finally {
      if (gen === sv.gen) sv.busy = false;
    }
  }

  /** New events of the open session (its state moved): read the newer turns soon. */
  function sessionMoved(id) {
    if (sv.id !== id) return;
    renderSessionLanes();
    clearTimeout(sv.soon);
    sv.soon = setTimeout(pollConversation, 300);
  }

  function takePage(page, how) {
    const turns = Array.isArray(page.turns) ? page.turns.filter((t) => t && typeof t === 'object') : [];
    const held = new Set(sv.turns.map((t) => t.seq));
    const fresh = turns.filter((t) => !held.has(t.seq));
    if (how === 'replace') sv.turns = turns;
    else if (how === 'older') sv.turns = fresh.concat(sv.turns);
    else sv.turns = sv.turns.concat(fresh);
    sv.turns.sort((a, b) => Number(a.seq) - Number(b.seq));
    if (how !== 'newer') sv.nextBefore = page.next_before ?? null;
    if (how !== 'older' || sv.nextAfter === null) {
      if (page.next_after !== undefined && page.next_after !== null) sv.nextAfter = page.next_after;
    }
    $('sv-error').hidden = true;
    $('sv-older').hidden = sv.nextBefore === null;
    renderNotes(page);
    if (how === 'replace') renderTurns();
    else if (fresh.length) renderTurns();
    $('sv-status').textContent = sv.turns.length === 0 ? 'No turns in the transcript yet.'
      : 'Turns ' + sv.turns.length + ' of ' + (Number(page.total) || sv.turns.length) + ' · ' + String(page.path || '');
  }

  /** What the collector said about the transcript, plainly. */
  function renderNotes(page) {
    const notes = [];
    if (page.lags) notes.push('The transcript is behind the events: ' + String(page.lag || 'a turn they report is not written yet') + '.');
    if (page.truncated) notes.push('Its last line is not complete yet (Claude Code may be writing it); it was skipped.');
    if (Number(page.skipped_lines) > 0) notes.push(count(Number(page.skipped_lines), 'line') + ' could not be read and were skipped.');
    if (Number(page.oversized_lines) > 0) notes.push(count(Number(page.oversized_lines), 'line') + ' over the size cap were skipped unread.');
    $('sv-notes').textContent = notes.join('\n');
  }

  function showConversationError(e) {
    const status = e && e.status ? ' (' + e.status + ')' : '';
    $('sv-error').textContent = 'No conversation' + status + ': ' + String((e && e.message) || e);
    $('sv-error').hidden = false;
    if (e && (e.status === 403 || e.status === 404)) {
      sv.turns = [];
      $('sv-turns').replaceChildren();
      $('sv-older').hidden = true;
      $('sv-status').textContent = '';
    }
  }

  const TURN_LABELS = { prompt: 'prompt', text: 'said', tool_use: 'tool call', tool_result: 'tool result' };

  function renderTurns() {
    const ol = $('sv-turns');
    const atBottom = ol.lastElementChild === null || $('session-view').scrollTop + $('session-view').clientHeight >= $('session-view').scrollHeight - 40;
    ol.replaceChildren(...sv.turns.map(renderTurn));
    if (atBottom && sv.turns.length) $('session-view').scrollTop = $('session-view').scrollHeight;
  }

  function renderTurn(t) {
    const kind = TURN_LABELS[t.kind] ? t.kind : 'text';
    const role = t.role === 'user' ? 'user' : 'assistant';
    const id = typeof t.tool_use_id === 'string' ? t.tool_use_id : null;
    const head = el('div', { class: 'head' },
      el('span', { class: 'who', text: (role === 'user' && kind === 'prompt' ? 'user ' : role === 'assistant' ? 'assistant ' : '') + TURN_LABELS[kind] }),
      t.tool ? el('span', { class: 'tool mono', text: String(t.tool) }) : null,
      t.is_error ? el('span', { class: 'err', text: 'error' }) : null,
      el('span', { class: 'time', title: String(t.ts || ''), text: t.ts ? fmtTime(t.ts) : '' }),
      el('span', { class: 'seq', text: '#' + t.seq }));
    if (id) {
      head.append(el('button', {
        type: 'button',
        class: 'link',
        title: 'Find this call\'s events in the timeline (' + id + ')',
        text: 'in timeline',
        onclick: () => showToolInTimeline(id),
      }));
    }
    const li = el('li', {
      class: 'turn k-' + kind + ' r-' + role + (t.is_error ? ' is-error' : ''),
      'data-seq': String(t.seq),
      'data-kind': kind,
      'data-tool-use-id': id,
    }, head, el('pre', { class: 'text', text: String(t.text ?? '') }));
    if (t.full_bytes) li.append(el('div', { class: 'muted', text: 'cut: ' + Number(t.full_bytes).toLocaleString() + ' bytes in all' }));
    return li;
  }

  /** Finds the events of tool call `id` among the timeline's (PreToolUse first),
   *  highlights them, selects the call and scrolls to it. The events may still be
   *  arriving (the filter just changed): it looks again for a few seconds. */
  function showToolInTimeline(id, tries) {
    linkedTool = id;
    const matches = events.filter((ev) => toolUseIdOf(ev) === id);
    const pick = matches.find((ev) => ev.hook === 'PreToolUse') || matches[0];
    if (!pick) {
      queueRender();
      if ((tries || 0) < 20) setTimeout(() => { if (linkedTool === id) showToolInTimeline(id, (tries || 0) + 1); }, 250);
      else $('sv-status').textContent = 'No event of tool call ' + id + ' is in the timeline.';
      return;
    }
    const i = events.indexOf(pick);
    const box = $('timeline');
    const pos = following() ? i : events.length - 1 - i;
    box.scrollTop = Math.max(0, pos * lastRowH - box.clientHeight / 2 + lastRowH / 2);
    select(pick.id);
    onTimelineScroll();
  }

  // ---- activity --------------------------------------------------------------------

  // Answers can arrive out of order (a poll under way as the window or a filter
  // changes): only the answer to the latest question is drawn.
  let activityAsked = 0;
  async function refreshActivity() {
    const asked = ++activityAsked;
    const p = filterParams();
    p.set('minutes', $('activity-minutes').value);
    try {
      const data = await getJson('/v1/activity', p);
      if (asked === activityAsked) renderActivity(data);
    } catch (e) {
      // A rejected filter has no chart (the filter bar says why); the previous
      // filter's would mislead. Otherwise the connection indicator says why.
      if (asked === activityAsked && e.status === 400) {
        $('activity').replaceChildren();
        $('activity-legend').replaceChildren();
      }
    }
  }

  // The bars are drawn in a stretched SVG; the labels are text of the page above
  // and below it, so they keep their shape at any width and never cover a bar.
  function renderActivity(data) {
    const buckets = Array.isArray(data.buckets) ? data.buckets : [];
    const W = 360;
    const H = 100;
    const max = Math.max(1, ...buckets.map((b) => Object.values(b.counts || {}).reduce((a, c) => a + Number(c), 0)));
    const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', preserveAspectRatio: 'none' });
    const seen = new Set();
    const bw = W / Math.max(1, buckets.length);
    buckets.forEach((b, i) => {
      let y = H;
      const title = [];
      for (const k of KINDS) {
        const c = Number((b.counts || {})[k]) || 0;
        if (!c) continue;
        seen.add(k);
        const h = (c / max) * (H - 1);
        y -= h;
        chart.append(svg('rect', { class: 'b-' + k, x: i * bw + 0.5, y, width: Math.max(1, bw - 1), height: h }));
        title.push(k + ' ' + c);
      }
      const hit = svg('rect', { x: i * bw, y: 0, width: bw, height: H, fill: 'transparent' });
      const tt = svg('title');
      tt.textContent = fmtTime(b.start).slice(0, 5) + ': ' + (title.join(', ') || 'no events');
      hit.append(tt);
      chart.append(hit);
    });
    chart.append(svg('line', { class: 'axis', x1: 0, x2: W, y1: H - 0.5, y2: H - 0.5 }));
    chart.setAttribute('aria-label', 'Events per minute by kind, peak ' + max);
    const peak = el('div', { class: 'chart-labels', 'aria-hidden': 'true' },
      el('span', { class: 'peak', text: max + '/min' }));
    const axis = el('div', { class: 'chart-labels', 'aria-hidden': 'true' });
    if (buckets.length) {
      axis.append(el('span', { class: 'from', text: fmtTime(buckets[0].start).slice(0, 5) }),
        el('span', { class: 'to', text: 'now' }));
    }
    $('activity').replaceChildren(peak, chart, axis);
    $('activity-legend').replaceChildren(...KINDS.filter((k) => seen.has(k)).map((k) =>
      el('li', { class: 'k-' + k }, el('span', { class: 'sw' }), k)));
  }

  // ---- alerts ----------------------------------------------------------------------

  // Every `alert` event (a worker or probe going late, down or dead, and its
  // recovery, which is only info) and every error, newest first.
  async function refreshAlerts() {
    try {
      const [alerts, serious] = await Promise.all([
        getList('/v1/events', 'events', new URLSearchParams({ kind: 'alert', limit: '50' })),
        getList('/v1/events', 'events', new URLSearchParams({ level: 'warn', limit: '200' })),
      ]);
      const byId = new Map();
      for (const e of [...alerts, ...serious]) {
        if (e && (e.kind === 'alert' || e.kind === 'error' || e.level === 'error')) byId.set(String(e.id), e);
      }
      const list = [...byId.values()]
        .sort((a, b) => (Date.parse(b.ts) || 0) - (Date.parse(a.ts) || 0))
        .slice(0, 50);
      alertList = list;
      answered.alerts = true;
      renderAlerts();
    } catch (_) { /* the connection indicator says why */ }
  }

  let alertList = [];
  function renderAlerts() {
    showPanelState('alerts');
    $('alerts').replaceChildren(...alertList.map((e) => el('li', {
      'data-id': String(e.id),
      'data-kind': String(e.kind),
      class: levelClass(e.level),
    },
    el('span', { class: 't', title: String(e.ts), text: fmtTime(e.ts).slice(0, 8) }),
    el('span', { class: 'm' },
      el('span', { class: sourceClass(e.source), text: String(e.source) + ': ' }),
      el('span', { text: String(e.msg || '') })))));
  }

  // ---- theme -----------------------------------------------------------------------

  function initTheme() {
    let saved = '';
    try { saved = localStorage.getItem('swarm-obs-theme') || ''; } catch (_) { /* storage off */ }
    if (saved === 'dark' || saved === 'light') document.documentElement.dataset.theme = saved;
    $('theme').addEventListener('click', () => {
      const dark = matchMedia('(prefers-color-scheme: dark)').matches;
      const current = document.documentElement.dataset.theme || (dark ? 'dark' : 'light');
      const next = current === 'dark' ? 'light' : 'dark';
      document.documentElement.dataset.theme = next;
      try { localStorage.setItem('swarm-obs-theme', next); } catch (_) { /* storage off */ }
    });
  }

  // ---- start -----------------------------------------------------------------------

  function every(ms, f) {
    f();
    return setInterval(f, ms);
  }

  function start() {
    readTokenFromFragment();
    readFiltersFromUrl();
    initTheme();
    $('filters').addEventListener('submit', (e) => { e.preventDefault(); applyFilters(); });
    // The kind boxes' changes bubble up to their list.
    for (const f of FILTERS) $('f-' + f).addEventListener('change', applyFilters);
    $('f-clear').addEventListener('click', () => {
      for (const f of FILTERS) setControl(f, '');
      applyFilters();
    });
    // The kind menu closes when anything else is clicked, or on Escape.
    document.addEventListener('click', (e) => {
      const menu = $('f-kind-menu');
      if (menu.open && !menu.contains(e.target)) menu.open = false;
    });
    $('f-kind-menu').addEventListener('keydown', (e) => {
      if (e.key !== 'Escape') return;
      $('f-kind-menu').open = false;
      $('f-kind-menu').querySelector('summary').focus();
    });
    $('order').addEventListener('change', () => {
      writeUrl();
      anchor = null;
      for (const row of rowPool.values()) row.remove();
      rowPool.clear();
      const box = $('timeline');
      queueRender();
      requestAnimationFrame(() => { box.scrollTop = following() ? box.scrollHeight : 0; queueRender(); });
    });
    $('activity-minutes').addEventListener('change', () => { writeUrl(); refreshActivity(); });
    $('timeline').addEventListener('scroll', onTimelineScroll, { passive: true });
    window.addEventListener('resize', queueRender);
    $('detail-close').addEventListener('click', () => { $('detail').hidden = true; selectedId = null; queueRender(); });
    $('sv-close').addEventListener('click', closeSessionView);
    $('sv-older').addEventListener('click', olderTurns);
    // Esc closes the session view (the kind menu, when open, takes its own Esc).
    document.addEventListener('keydown', (e) => {
      if (e.key !== 'Escape' || sv.id === null || $('f-kind-menu').open) return;
      if ($('f-kind-menu').contains(e.target)) return;
      closeSessionView();
    });
    $('token-form').addEventListener('submit', (e) => {
      e.preventDefault();
      try { sessionStorage.setItem(TOKEN_KEY, $('token-input').value.trim()); } catch (_) { /* storage off */ }
      $('token-input').value = '';
      $('token-form').hidden = true;
      waitingForToken = false;
      renderPanels();
      $('activity').replaceChildren(el('p', { class: 'muted status', text: 'Loading…' }));
      connect();
      refreshWorkers();
      refreshProbes();
      refreshActivity();
      refreshAlerts();
    });
    renderPanels();
    connect();
    every(POLL_WORKERS_MS, refreshWorkers);
    every(POLL_PROBES_MS, refreshProbes);
    every(POLL_ACTIVITY_MS, refreshActivity);
    every(POLL_ALERTS_MS, refreshAlerts);
    setInterval(tickAges, 250);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
