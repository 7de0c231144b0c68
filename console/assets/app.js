// Homing web console. It polls the node's JSON API (same origin) and draws
// the cluster, the throughput and queue depth of the last 24 hours (kept
// by the nodes: GET /api/v1/history), the cluster's queue a page at a
// time, the journey of a message, accounts, domains and aliases, and the
// delivery log as it is written. Everything that comes from the API reaches the
// DOM as text (textContent, append of strings, setAttribute), never as
// markup. No library, no build step.
'use strict';

(() => {
  const API = '/api/v1';
  const CLUSTER_EVERY_MS = 2000; // cluster picture
  const QUEUE_EVERY_MS = 5000; // queue page
  const HISTORY_EVERY_MS = 10000; // the charts of the last 24 hours
  const LOG_EVERY_MS = 2000; // the live delivery log
  const HISTORY_MS = 24 * 60 * 60 * 1000; // what the charts show
  const MINUTE_MS = 60 * 1000;
  const MODE_PENDING_MS = 10000; // how long a switched mode waits for gossip
  const QUEUE_PAGE = 20; // queue rows per page: one screen
  const LOG_LINES_MAX = 300; // lines of the delivery log kept on the page
  const ACCOUNT_PAGE = 25; // messages per page of the account view
  const TOKEN_KEY = 'homing.console.token';
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const STATES = ['alive', 'suspect', 'dead', 'left'];
  const MODES = [
    ['locally', 'Locally'],
    ['locally-for-others', 'Locally for Others'],
    ['remotely', 'Remotely'],
  ];
  const ACTIONS = [
    ['retry', 'Retry'],
    ['hold', 'Hold'],
    ['release', 'Release'],
    ['delete', 'Delete'],
  ];

  // Geometry of the cluster picture, in SVG user units.
  const BOX = { w: 250, pad: 12, head: 112, cell: 22, gap: 4, perRow: 9, line: 16 };
  const ROW_GAP = 56;
  const MARGIN = 16;
  const FOOTER = 28;
  // Geometry of the queue depth chart (its viewBox is 560 x 180).
  const CHART = { w: 560, h: 180, left: 44, right: 14, top: 12, bottom: 28 };

  const SERIES = [
    ['in', 'in'],
    ['delivered', 'delivered'],
    ['relayed', 'relayed'],
    ['deferred', 'deferred'],
  ];

  const state = {
    members: new Map(), // member name -> the SVG parts of its box
    queuePage: { offset: 0, q: '', state: '', node: '' }, // the queue page shown
    queueTotal: 0,
    nodeNames: [], // members, for the queue's node filter
    logSince: '', // the newest delivery log line shown (its time)
    logSeen: new Set(), // node/seq of the lines shown
    // The record of the account on screen, as the API answered it
    // (address, quota, disabled...): what the management forms change.
    accountInfo: null,
    pendingModes: new Map(), // member name -> {mode, until}
    queueShown: null, // JSON of the queue list on screen
    queueSeq: 0, // the newest queue request; older answers are dropped
    journeySeq: 0,
    accountSeq: 0,
    // The account on screen: its address, its message count, its folders
    // (from /folders), the folder shown ('' = every folder) and the page.
    account: null,
    pageSeq: 0, // the newest page request; older answers are dropped
  };

  // ---- DOM helpers -------------------------------------------------------

  function $(id) {
    return document.getElementById(id);
  }

  // h builds an HTML element, s an SVG element. Attributes are set with
  // setAttribute and children appended as nodes or text, so no value is
  // ever parsed as markup. null, undefined and false are skipped.
  function h(tag, attrs, ...children) {
    return build(document.createElement(tag), attrs, children);
  }

  function s(tag, attrs, ...children) {
    return build(document.createElementNS(SVG_NS, tag), attrs, children);
  }

  function build(node, attrs, children) {
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  // say writes a status line; kind is '', 'ok' or 'error'.
  function say(id, text, kind) {
    const node = $(id);
    node.textContent = text || '';
    node.dataset.kind = kind || '';
  }

  // ---- the API -----------------------------------------------------------

  class APIError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  }

  // api calls the JSON API and returns the decoded body (null when empty).
  // It throws an APIError with a message fit for the operator; a 401 also
  // opens the token form.
  async function api(method, path, body) {
    return (await apiResponse(method, path, body)).body;
  }

  // apiResponse is api that also returns the answer's headers.
  async function apiResponse(method, path, body) {
    const headers = { Accept: 'application/json' };
    const tok = token();
    if (tok) headers.Authorization = 'Bearer ' + tok;
    const init = { method, headers, cache: 'no-store', credentials: 'same-origin' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (err) {
      throw new APIError(0, `the node did not answer (${err.message})`);
    }
    if (res.status === 401) {
      askForToken(tok
        ? 'The node refused this token. Enter a valid admin token.'
        : 'This node requires an admin token.');
      throw new APIError(401, 'not authorized: an admin token is required (401)');
    }
    if (res.status === 403) {
      throw new APIError(403, 'forbidden: this token may not do that; a read-only token can only look (403)');
    }
    if (!res.ok) throw new APIError(res.status, await errorMessage(res));
    const text = await res.text();
    if (!text) return { body: null, headers: res.headers };
    try {
      return { body: JSON.parse(text), headers: res.headers };
    } catch {
      throw new APIError(res.status, 'the node answered with something that is not JSON');
    }
  }

  async function errorMessage(res) {
    let detail = '';
    try {
      const body = await res.json();
      if (body && body.error) detail = String(body.error);
    } catch {
      // not JSON: the status says it all
    }
    return detail ? `${detail} (${res.status})` : `HTTP ${res.status} ${res.statusText}`.trim();
  }

  // ---- the admin token ---------------------------------------------------

  function askForToken(message) {
    $('auth-message').textContent = message;
    if ($('auth').hidden) {
      $('auth').hidden = false;
      $('token-input').focus();
    }
  }

  function onTokenSubmit(ev) {
    ev.preventDefault();
    const value = $('token-input').value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $('token-input').value = '';
    $('auth').hidden = true;
    showForgetButton();
    refreshAll();
  }

  function forgetToken() {
    sessionStorage.removeItem(TOKEN_KEY);
    showForgetButton();
    refreshAll();
  }

  function showForgetButton() {
    $('forget-token').hidden = !token();
  }

  // ---- formatting --------------------------------------------------------

  // fmtTime shows an RFC 3339 time in UTC; withMillis for journeys, where
  // events can be milliseconds apart.
  function fmtTime(value, withMillis) {
    if (!value) return '—';
    const d = new Date(value);
    if (Number.isNaN(d.getTime())) return String(value);
    if (d.getUTCFullYear() <= 1) return '—'; // Go's zero time
    const iso = d.toISOString();
    return iso.slice(0, 10) + ' ' + iso.slice(11, withMillis ? 23 : 19) + ' UTC';
  }

  function fmtSize(bytes) {
    const n = Number(bytes);
    if (!Number.isFinite(n)) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = n;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (i === 0 ? String(v) : v.toFixed(1)) + ' ' + units[i];
  }

  function fmtNum(v) {
    return Number.isInteger(v) ? String(v) : v.toFixed(1);
  }

  function modeLabel(mode) {
    const m = MODES.find(([value]) => value === mode);
    return m ? m[1] : String(mode || 'unknown');
  }

  // cssToken makes a value safe to use as part of a class name.
  function cssToken(v) {
    return String(v || 'unknown').toLowerCase().replace(/[^a-z0-9-]/g, '-');
  }

  // colourIndex gives each node name one of six colours, the same on every
  // refresh, so one node's events stand out in a journey.
  function colourIndex(name) {
    let hash = 0;
    for (const ch of String(name)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
    return hash % 6;
  }

  function byName(a, b) {
    return String(a.name).localeCompare(String(b.name), undefined, { numeric: true });
  }

  function timeOf(v) {
    const t = Date.parse(v);
    return Number.isNaN(t) ? 0 : t;
  }

  function roles(member) {
    return Array.isArray(member.roles) ? member.roles.map(String) : [];
  }

  // ---- the cluster picture -----------------------------------------------

  async function refreshCluster() {
    const [cluster, nodes] = await Promise.allSettled([
      api('GET', API + '/cluster'),
      api('GET', API + '/nodes'),
    ]);
    if (cluster.status === 'rejected') {
      say('cluster-error', 'Cluster view unavailable: ' + cluster.reason.message, 'error');
      $('cluster').classList.add('stale');
      return;
    }
    $('cluster').classList.remove('stale');
    const details = nodes.status === 'fulfilled' ? nodeDetails(nodes.value) : null;
    say('cluster-error', details ? '' : 'Per-node details unavailable: ' + nodes.reason.message, 'error');
    drawCluster(cluster.value || {}, details || new Map());
    $('cluster-updated').textContent = 'updated ' + fmtTime(new Date().toISOString());
    if (details) depthNow(details);
    nodeFilter(cluster.value || {});
  }

  // nodeDetails indexes GET /api/v1/nodes ([{"name", "queue": {"total",
  // ...}, "partitions": [{"id", "open", "error"}], "error"}]) by node
  // name: the partitions each node holds open, those whose data failed to
  // open (damaged files, another error; not a handoff) with why, its queue
  // depth, and the error when the node could not be asked (then it has no
  // depth and nothing open).
  function nodeDetails(body) {
    const list = Array.isArray(body) ? body : [];
    const out = new Map();
    for (const n of list) {
      if (!n || typeof n !== 'object' || !n.name) continue;
      const error = n.error ? String(n.error) : '';
      const open = new Set();
      const failed = new Map();
      for (const p of !error && Array.isArray(n.partitions) ? n.partitions : []) {
        if (p && p.open === true) open.add(Number(p.id));
        else if (p && p.error) failed.set(Number(p.id), String(p.error));
      }
      out.set(String(n.name), { open, failed, depth: error ? null : queueTotal(n), error });
    }
    return out;
  }

  // failures lists a node's partitions that failed to open, by id, as
  // [id, why] pairs.
  function failures(detail) {
    if (!detail || !detail.failed) return [];
    return [...detail.failed.entries()].sort((a, b) => a[0] - b[0]);
  }

  function queueTotal(n) {
    return n.queue && typeof n.queue.total === 'number' ? n.queue.total : null;
  }

  // partitionsOf groups the partition map by owner; partitions with no
  // owner, or an owner that is not a member, are "unowned".
  function partitionsOf(list, members) {
    const names = new Set(members.map((m) => String(m.name)));
    const owned = new Map();
    const unowned = [];
    for (const p of Array.isArray(list) ? list : []) {
      if (!p || p.id === undefined) continue;
      const id = Number(p.id);
      const owner = p.owner ? String(p.owner) : '';
      if (!owner || !names.has(owner)) {
        unowned.push(id);
        continue;
      }
      if (!owned.has(owner)) owned.set(owner, []);
      owned.get(owner).push(id);
    }
    for (const ids of owned.values()) ids.sort((a, b) => a - b);
    unowned.sort((a, b) => a - b);
    return { owned, unowned, total: Array.isArray(list) ? list.length : 0 };
  }

  function isBackend(member) {
    return roles(member).includes('backend');
  }

  function boxHeight(member, owned, details) {
    if (!isBackend(member)) return BOX.head;
    const n = (owned.get(String(member.name)) || []).length;
    const rows = Math.max(1, Math.ceil(n / BOX.perRow));
    const failed = failures(details.get(String(member.name))).length;
    return BOX.head + rows * (BOX.cell + BOX.gap) + failed * BOX.line + BOX.pad;
  }

  // layout puts frontends (and members without the backend role) in the
  // top row and backends in the row below, each row sorted by name.
  function layout(members, owned, details) {
    const rows = [members.filter((m) => !isBackend(m)), members.filter(isBackend)]
      .filter((row) => row.length > 0);
    const boxes = [];
    let y = MARGIN;
    let width = 320;
    for (const row of rows) {
      row.sort(byName);
      const height = Math.max(...row.map((m) => boxHeight(m, owned, details)));
      row.forEach((m, i) => {
        boxes.push({ member: m, x: MARGIN + i * (BOX.w + MARGIN), y, w: BOX.w, h: height, backend: isBackend(m) });
      });
      width = Math.max(width, MARGIN + row.length * (BOX.w + MARGIN));
      y += height + ROW_GAP;
    }
    const height = (rows.length ? y - ROW_GAP : y) + MARGIN + FOOTER;
    return { boxes, width, height };
  }

  function drawCluster(cluster, details) {
    const members = (Array.isArray(cluster.members) ? cluster.members : [])
      .filter((m) => m && m.name);
    const parts = partitionsOf(cluster.partitions, members);
    const { boxes, width, height } = layout(members, parts.owned, details);
    const svg = $('cluster');
    svg.setAttribute('width', width);
    svg.setAttribute('height', height);
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    drawLinks(boxes);
    const seen = new Set();
    for (const box of boxes) {
      const name = String(box.member.name);
      seen.add(name);
      updateMember(memberParts(name), box, details.get(name), parts.owned.get(name) || []);
    }
    for (const [name, p] of state.members) {
      if (seen.has(name)) continue;
      p.g.remove();
      state.members.delete(name);
    }
    drawFooter(parts, members.length, height);
  }

  // drawLinks draws the cluster channel: a line from every frontend to
  // every backend, dashed when either end is not alive.
  function drawLinks(boxes) {
    const fronts = boxes.filter((b) => !b.backend);
    const backs = boxes.filter((b) => b.backend);
    const lines = [];
    for (const f of fronts) {
      for (const b of backs) {
        const up = f.member.state === 'alive' && b.member.state === 'alive';
        lines.push(s('line', {
          class: up ? 'link' : 'link down',
          x1: f.x + f.w / 2, y1: f.y + f.h, x2: b.x + b.w / 2, y2: b.y,
        }));
      }
    }
    $('cluster-links').replaceChildren(...lines);
  }

  function drawFooter(parts, memberCount, height) {
    const footer = $('cluster-footer');
    footer.setAttribute('x', MARGIN);
    footer.setAttribute('y', height - MARGIN);
    if (memberCount === 0) {
      footer.textContent = 'No members reported.';
      footer.setAttribute('class', 'footer warn');
    } else if (parts.unowned.length > 0) {
      footer.textContent = `Partitions without a live owner: ${parts.unowned.join(', ')}`;
      footer.setAttribute('class', 'footer warn');
    } else {
      footer.textContent = `${memberCount} member(s), ${parts.total} partition(s), every one owned.`;
      footer.setAttribute('class', 'footer');
    }
  }

  // memberParts returns the box of a member, creating it the first time.
  // Boxes are kept across refreshes so that the queue-mode select keeps
  // its focus and an open drop-down while the picture updates.
  function memberParts(name) {
    const known = state.members.get(name);
    if (known) return known;
    const select = modeSelect(name);
    const p = {
      g: s('g', { class: 'member', 'data-node': name, role: 'group', 'aria-label': `member ${name}` }),
      title: s('title'),
      rect: s('rect', { class: 'box', rx: 8, ry: 8 }),
      band: s('rect', { class: 'band', height: 6, rx: 3, ry: 3, x: 1, y: 1 }),
      name: s('text', { class: 'name', x: BOX.pad, y: 30 }, name),
      state: s('text', { class: 'state', y: 30, 'text-anchor': 'end' }),
      roles: s('text', { class: 'detail roles', x: BOX.pad, y: 50 }),
      info: s('text', { class: 'detail info', x: BOX.pad, y: 68 }),
      form: s('foreignObject', { x: BOX.pad, y: 76, width: BOX.w - 2 * BOX.pad, height: 30 }),
      parts: s('g', { class: 'partitions', transform: `translate(${BOX.pad},${BOX.head})` }),
      select,
    };
    p.form.append(h('label', { class: 'mode' }, 'Queue mode ', select));
    p.g.append(p.title, p.rect, p.band, p.name, p.state, p.roles, p.info, p.form, p.parts);
    $('cluster-members').append(p.g);
    state.members.set(name, p);
    return p;
  }

  function updateMember(p, box, detail, partitions) {
    const m = box.member;
    const raw = String(m.state || 'unknown').toLowerCase();
    const known = STATES.includes(raw) ? raw : 'unknown';
    p.g.setAttribute('transform', `translate(${box.x},${box.y})`);
    p.g.setAttribute('class', `member state-${known}` + (box.backend ? ' backend' : ' frontend'));
    p.g.setAttribute('data-state', raw);
    p.rect.setAttribute('width', box.w);
    p.rect.setAttribute('height', box.h);
    p.band.setAttribute('width', box.w - 2);
    p.state.setAttribute('x', box.w - BOX.pad);
    p.state.textContent = raw;
    p.roles.textContent = roles(m).join(' + ') || 'no roles';
    p.info.textContent = infoLine(m, detail);
    p.title.textContent = memberTitle(m, detail);
    updateSelect(p.select, String(m.name), String(m.queueMode || ''), known === 'alive' || known === 'suspect');
    drawPartitions(p.parts, box, detail, partitions);
  }

  function infoLine(m, detail) {
    const bits = [];
    if (detail && detail.error) bits.push('no answer');
    else if (detail && detail.depth !== null) bits.push(`queue ${detail.depth}`);
    if (m.uptime) bits.push(`up ${m.uptime}`);
    if (m.version) bits.push(String(m.version));
    return bits.join(' · ');
  }

  function memberTitle(m, detail) {
    const lines = [`${m.name}: ${m.state || 'unknown'}`, `roles: ${roles(m).join(', ') || 'none'}`,
      `queue mode: ${modeLabel(m.queueMode)}`];
    if (m.smtp) lines.push(`SMTP ${m.smtp}`);
    if (m.admin) lines.push(`admin ${m.admin}`);
    if (detail && detail.error) lines.push(`details: ${detail.error}`);
    return lines.join('\n');
  }

  function drawPartitions(layer, box, detail, ids) {
    if (!box.backend) {
      layer.replaceChildren();
      return;
    }
    if (ids.length === 0) {
      layer.replaceChildren(s('text', { class: 'detail', x: 0, y: 15 }, 'no partitions'));
      return;
    }
    const step = BOX.cell + BOX.gap;
    const failed = detail && detail.failed ? detail.failed : new Map();
    const cells = ids.map((id, i) => {
      const open = Boolean(detail) && detail.open.has(id);
      const why = open ? undefined : failed.get(id);
      return s('g', {
        class: open ? 'partition open' : why ? 'partition closed failed' : 'partition closed',
        'data-partition': id,
        'data-open': String(open),
        'data-error': why,
        transform: `translate(${(i % BOX.perRow) * step},${Math.floor(i / BOX.perRow) * step})`,
      },
      s('title', {}, `partition ${id}: ${open ? 'open' : 'not open'} on ${box.member.name}` + (why ? `: ${why}` : '')),
      s('rect', { width: BOX.cell, height: BOX.cell, rx: 3, ry: 3 }),
      s('text', { x: BOX.cell / 2, y: BOX.cell / 2 + 4, 'text-anchor': 'middle' }, id));
    });
    // Below the cells, one line per partition that failed to open, with
    // why (the whole text in its tooltip).
    const top = Math.max(1, Math.ceil(ids.length / BOX.perRow)) * step + 10;
    const lines = failures(detail).map(([id, why], i) => s('text', {
      class: 'detail partition-error', 'data-partition-error': id, x: 0, y: top + i * BOX.line,
    }, clip(`partition ${id}: ${failureLabel(why)}`, 40), s('title', {}, `partition ${id}: ${why}`)));
    layer.replaceChildren(...cells, ...lines);
  }

  // failureLabel says in a few words why a partition did not open.
  function failureLabel(why) {
    if (/data damaged/.test(why)) return 'damaged, not open';
    if (/directory lock cannot be taken/.test(why)) return 'lock fails, not open';
    return 'failed to open';
  }

  function clip(text, n) {
    return text.length > n ? text.slice(0, n - 1) + '…' : text;
  }

  // ---- the queue-mode switch ---------------------------------------------

  function modeSelect(name) {
    const select = h('select', { class: 'mode-select', 'data-node': name, 'aria-label': `Queue mode of ${name}` },
      ...MODES.map(([value, label]) => h('option', { value }, label)));
    select.addEventListener('change', () => changeMode(name, select));
    return select;
  }

  // updateSelect shows the member's mode, unless the operator is using the
  // select or just switched it and gossip has not caught up yet. A member
  // that is dead or has left cannot be switched.
  function updateSelect(select, name, mode, reachable) {
    const pending = state.pendingModes.get(name);
    if (pending && (pending.mode === mode || Date.now() > pending.until)) {
      state.pendingModes.delete(name);
    }
    select.dataset.current = mode;
    select.disabled = select.dataset.busy === 'true' || !reachable;
    if (select.disabled || document.activeElement === select || state.pendingModes.has(name)) return;
    if (select.value !== mode) select.value = mode;
  }

  // changeMode asks first: a queue mode decides where the mail generated
  // on the node is processed.
  async function changeMode(name, select) {
    const mode = select.value;
    const from = select.dataset.current || '';
    select.dataset.busy = 'true';
    select.disabled = true;
    const ok = await confirmAction('Switch the queue mode?',
      `Switch ${name} from ${modeLabel(from)} to ${modeLabel(mode)}? Mail generated on ${name} is then processed ` +
      (mode === 'remotely' ? 'by a member that processes queues for others.' :
        mode === 'locally-for-others' ? 'here, and this node takes the mail of members in mode Remotely.' : 'here.'),
      'Switch');
    if (!ok) {
      select.value = from;
      select.dataset.busy = 'false';
      select.disabled = false;
      say('cluster-status', `${name}: queue mode left at ${modeLabel(from)}.`);
      return;
    }
    try {
      await api('PUT', `${API}/settings?node=${encodeURIComponent(name)}`, { queueMode: mode });
      state.pendingModes.set(name, { mode, until: Date.now() + MODE_PENDING_MS });
      say('cluster-status', `${name}: queue mode set to ${modeLabel(mode)}.`, 'ok');
    } catch (err) {
      select.value = select.dataset.current || '';
      say('cluster-status', `${name}: queue mode not changed: ${err.message}`, 'error');
    } finally {
      select.dataset.busy = 'false';
      select.disabled = false;
    }
  }

  // ---- the last 24 hours -------------------------------------------------

  // depthNow says how many messages are queued now, from GET /api/v1/nodes.
  function depthNow(details) {
    let total = 0;
    let answered = 0;
    for (const d of details.values()) {
      if (d.depth === null) continue;
      total += d.depth;
      answered++;
    }
    if (answered > 0) say('depth-now', `${total} message(s) queued now on ${answered} node(s).`);
  }

  // refreshHistory draws the throughput and queue depth of every node per
  // minute, from GET /api/v1/history?scope=cluster ([{"node", "minutes":
  // [{"t", "in", "delivered", "relayed", "deferred", "bounced",
  // "queue"}]}]): the nodes keep them, so every viewer sees the same.
  async function refreshHistory() {
    let body;
    try {
      body = await api('GET', API + '/history?scope=cluster');
    } catch (err) {
      say('throughput-now', 'History unavailable: ' + err.message, 'error');
      return;
    }
    const nodes = (Array.isArray(body) ? body : []).filter((n) => n && n.node)
      .map((n) => ({ node: String(n.node), error: n.error ? String(n.error) : '',
        minutes: (Array.isArray(n.minutes) ? n.minutes : []).filter((m) => m && m.t) }));
    nodes.sort((a, b) => a.node.localeCompare(b.node, undefined, { numeric: true }));
    const now = Date.now();
    drawThroughput(nodes, now);
    drawDepthHistory(nodes, now);
  }

  // niceCeil rounds up to 1, 2 or 5 times a power of ten.
  function niceCeil(v) {
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  // chartFrame draws a chart's grid for values up to max over the last 24
  // hours, and returns its scales.
  function chartFrame(svg, max, now) {
    const { w, h: height, left, right, top, bottom } = CHART;
    const pw = w - left - right;
    const ph = height - top - bottom;
    const x = (t) => left + pw * (1 - (now - t) / HISTORY_MS);
    const y = (v) => top + ph * (1 - v / max);
    const grid = [0, max / 2, max].map((v) => s('g', { class: 'grid-line' },
      s('line', { x1: left, x2: w - right, y1: y(v), y2: y(v) }),
      s('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmtNum(v))));
    const ticks = [24, 18, 12, 6, 0].map((hours) => s('text', {
      class: 'tick', x: x(now - hours * 3600000), y: height - 8,
      'text-anchor': hours === 24 ? 'start' : (hours === 0 ? 'end' : 'middle'),
    }, hours === 0 ? 'now' : `−${hours} h`));
    svg.replaceChildren(...grid, ...ticks);
    return { x, y };
  }

  // linePath draws points [{t, v}] (by minute); a missing minute breaks
  // the line.
  function linePath(points, x, y) {
    let d = '';
    let last = null;
    for (const p of points) {
      d += (last === null || p.t - last > MINUTE_MS * 1.5 ? 'M' : 'L') + x(p.t).toFixed(1) + ',' + y(p.v).toFixed(1);
      last = p.t;
    }
    if (points.length === 1) d += 'h1'; // one minute: a dot
    return d;
  }

  function drawThroughput(nodes, now) {
    // The cluster's sum per minute.
    const sums = new Map();
    for (const n of nodes) {
      for (const m of n.minutes) {
        const t = timeOf(m.t);
        if (t < now - HISTORY_MS) continue;
        const sum = sums.get(t) || { in: 0, delivered: 0, relayed: 0, deferred: 0 };
        for (const [key] of SERIES) sum[key] += Number(m[key]) || 0;
        sums.set(t, sum);
      }
    }
    const times = [...sums.keys()].sort((a, b) => a - b);
    let max = 2;
    for (const t of times) for (const [key] of SERIES) max = Math.max(max, sums.get(t)[key]);
    max = niceCeil(max);
    const svg = $('throughput-chart');
    const { x, y } = chartFrame(svg, max, now);
    for (const [key] of SERIES) {
      svg.append(s('path', { class: `series series-${key}`, 'data-series': key,
        d: linePath(times.map((t) => ({ t, v: sums.get(t)[key] })), x, y) }));
      if (times.length) {
        const t = times[times.length - 1];
        svg.append(s('circle', { class: `series-${key}`, cx: x(t), cy: y(sums.get(t)[key]), r: 3 }));
      }
    }
    const total = { in: 0, delivered: 0, relayed: 0, deferred: 0 };
    for (const t of times) for (const [key] of SERIES) total[key] += sums.get(t)[key];
    const last = times.length ? sums.get(times[times.length - 1]) : total;
    for (const [key] of SERIES) {
      svg.setAttribute(`data-total-${key}`, total[key]);
      svg.setAttribute(`data-last-${key}`, times.length ? last[key] : 0);
    }
    svg.setAttribute('data-minutes', times.length);
    svg.setAttribute('data-max', max);
    say('throughput-now', times.length
      ? `Last 24 h: ${total.in} in, ${total.delivered} delivered, ${total.relayed} relayed, ${total.deferred} deferred.`
      : 'No minutes recorded yet.');
  }

  function drawDepthHistory(nodes, now) {
    let max = 2;
    for (const n of nodes) for (const m of n.minutes) max = Math.max(max, Number(m.queue) || 0);
    max = niceCeil(max);
    const svg = $('depth-chart');
    const { x, y } = chartFrame(svg, max, now);
    let last = 0;
    for (const n of nodes) {
      const points = n.minutes.map((m) => ({ t: timeOf(m.t), v: Number(m.queue) || 0 })).filter((p) => p.t >= now - HISTORY_MS);
      svg.append(s('path', { class: `depth-line c${colourIndex(n.node)}`, 'data-node': n.node, d: linePath(points, x, y) }));
      if (points.length) {
        const p = points[points.length - 1];
        last += p.v;
        svg.append(s('circle', { class: `c${colourIndex(n.node)}`, cx: x(p.t), cy: y(p.v), r: 3 }));
      }
    }
    svg.setAttribute('data-nodes', nodes.map((n) => n.node).join(','));
    svg.setAttribute('data-last', last);
    svg.setAttribute('data-max', max);
    $('depth-legend').replaceChildren(...nodes.map((n) => h('li', { 'data-node': n.node },
      h('span', { class: `swatch c${colourIndex(n.node)}` }), n.node + (n.error ? ' (no answer)' : ''))));
  }

  // ---- the queue list ----------------------------------------------------

  // refreshQueue shows one page of the cluster's queue: GET
  // /api/v1/queue?scope=cluster with the search, state, node, offset and
  // limit; the node says how many match (X-Total-Count).
  async function refreshQueue() {
    const seq = ++state.queueSeq;
    const pg = state.queuePage;
    const params = new URLSearchParams({ scope: 'cluster', offset: String(pg.offset), limit: String(QUEUE_PAGE) });
    if (pg.q) params.set('q', pg.q);
    if (pg.state) params.set('state', pg.state);
    if (pg.node) params.set('node', pg.node);
    let res;
    try {
      res = await apiResponse('GET', API + '/queue?' + params.toString());
    } catch (err) {
      if (seq === state.queueSeq) say('queue-error', 'Queue unavailable: ' + err.message, 'error');
      return;
    }
    if (seq !== state.queueSeq) return; // a newer request answers
    say('queue-error', '', 'error');
    const body = res.body;
    const list = Array.isArray(body) ? body : (body && Array.isArray(body.entries) ? body.entries : []);
    const entries = list.filter((e) => e && e.id);
    const total = Number(res.headers.get('X-Total-Count'));
    state.queueTotal = Number.isFinite(total) && res.headers.has('X-Total-Count') ? total : entries.length;
    if (entries.length === 0 && pg.offset > 0 && state.queueTotal > 0) {
      // The page emptied (messages left): show the last one there is.
      pg.offset = Math.max(0, Math.floor((state.queueTotal - 1) / QUEUE_PAGE) * QUEUE_PAGE);
      return refreshQueue();
    }
    const key = JSON.stringify([pg, state.queueTotal, entries]);
    if (key === state.queueShown) return;
    state.queueShown = key;
    renderQueue(entries);
  }

  function renderQueue(entries) {
    const pg = state.queuePage;
    const filtered = pg.q || pg.state || pg.node;
    const rows = entries.length > 0
      ? entries.map(queueRow)
      : [h('tr', {}, h('td', { colspan: 10, class: 'empty' }, filtered ? 'No message matches.' : 'The queue is empty.'))];
    $('queue-body').replaceChildren(...rows);
    const total = state.queueTotal;
    const from = entries.length ? pg.offset + 1 : 0;
    const to = pg.offset + entries.length;
    $('queue-count').textContent = `${total} message(s)` + (filtered ? ' match' : '');
    $('queue-page').textContent = total > 0 ? `${from}–${to} of ${total}` : '';
    $('queue-prev').disabled = pg.offset === 0;
    $('queue-next').disabled = to >= total;
    $('queue').dataset.total = total;
    $('queue').dataset.offset = pg.offset;
  }

  function queuePageBy(delta) {
    const pg = state.queuePage;
    pg.offset = Math.max(0, pg.offset + delta * QUEUE_PAGE);
    state.queueShown = null;
    refreshQueue();
  }

  // onQueueFilter starts again at the first page with the new search.
  function onQueueFilter() {
    const pg = state.queuePage;
    pg.q = $('queue-search').value.trim();
    pg.state = $('queue-state').value;
    pg.node = $('queue-node').value;
    pg.offset = 0;
    state.queueShown = null;
    refreshQueue();
  }

  // nodeFilter keeps the queue's node filter listing the members.
  function nodeFilter(cluster) {
    const names = (Array.isArray(cluster.members) ? cluster.members : []).filter((m) => m && m.name)
      .map((m) => String(m.name)).sort();
    if (JSON.stringify(names) === JSON.stringify(state.nodeNames)) return;
    state.nodeNames = names;
    const select = $('queue-node');
    const current = select.value;
    select.replaceChildren(h('option', { value: '' }, 'any'), ...names.map((n) => h('option', { value: n }, n)));
    select.value = names.includes(current) ? current : '';
  }

  function queueRow(e) {
    const id = String(e.id);
    const node = String(e.node || '');
    const st = String(e.state || '');
    return h('tr', { 'data-queue-id': id, 'data-node': node, 'data-state': st },
      h('td', {}, h('button', { type: 'button', class: 'link', 'data-journey': id, title: 'Show the journey of this message' }, id)),
      h('td', { class: 'node' }, node || '—'),
      h('td', {}, e.sender ? String(e.sender) : '<>'),
      h('td', {}, recipientList(e.recipients)),
      h('td', { class: 'state' }, h('span', { class: 'badge q-' + cssToken(st) }, st || '—'),
        h('span', { class: 'muted attempts' }, attemptsText(e.attempts))),
      timeCell(e.nextAttempt),
      h('td', { class: 'error-text', title: e.lastError ? String(e.lastError) : null }, e.lastError ? String(e.lastError) : ''),
      timeCell(e.received),
      h('td', { class: 'num' }, fmtSize(e.size)),
      h('td', {}, h('div', { class: 'actions' }, ...ACTIONS.map(([action, label]) => h('button', {
        type: 'button',
        'data-action': action,
        class: action === 'delete' ? 'danger' : null,
        'aria-label': `${label} ${id}`,
        disabled: (action === 'hold' && st === 'held') || (action === 'release' && st !== 'held'),
      }, label)))));
  }

  // timeCell shows a UTC time on one line, to keep a queue page one
  // screen tall; the column heads say UTC.
  function timeCell(value) {
    const text = fmtTime(value);
    const known = text.endsWith(' UTC');
    return h('td', { class: 'time' }, h('time', { datetime: known ? String(value) : null }, known ? text.slice(0, -4) : text));
  }

  function attemptsText(n) {
    const count = Number(n) || 0;
    return count === 1 ? '1 attempt' : `${count} attempts`;
  }

  // recipientList shows the first recipient and how many more (all of
  // them, with their states, in the tooltip): one line per message.
  function recipientList(recipients) {
    const list = Array.isArray(recipients) ? recipients : [];
    const describe = (r) => {
      const bits = [r.state, r.attempts ? attemptsText(r.attempts) : ''].filter(Boolean).join(', ');
      return String(r.address || '') + (bits ? ` (${bits})` : '') + (r.lastError ? `: ${r.lastError}` : '');
    };
    if (list.length === 0) return '—';
    const first = list[0];
    return h('span', { class: 'rcpts', title: list.map(describe).join('\n') },
      String(first.address || ''),
      list.length > 1 ? h('span', { class: 'muted more' }, ` +${list.length - 1} more`) : null);
  }

  function onQueueClick(ev) {
    const button = ev.target.closest('button');
    if (!button || button.disabled) return;
    const row = button.closest('tr');
    if (button.dataset.journey) {
      $('journey-input').value = button.dataset.journey;
      showJourney(button.dataset.journey);
      return;
    }
    if (button.dataset.action && row) {
      queueAction(row.dataset.queueId, row.dataset.node, button.dataset.action, row);
    }
  }

  async function queueAction(id, node, action, row) {
    const label = (ACTIONS.find(([a]) => a === action) || [action, action])[1];
    if (action === 'delete' && !(await confirmDelete(id, node))) {
      say('queue-status', `Kept ${id}.`);
      return;
    }
    const where = node ? `?node=${encodeURIComponent(node)}` : '';
    const path = `${API}/queue/${encodeURIComponent(id)}${action === 'delete' ? '' : '/' + action}${where}`;
    setBusy(row, true);
    try {
      await api(action === 'delete' ? 'DELETE' : 'POST', path);
      say('queue-status', `${label}: ${id}${node ? ' on ' + node : ''}: done.`, 'ok');
    } catch (err) {
      say('queue-status', `${label} ${id} failed: ${err.message}`, 'error');
    }
    setBusy(row, false);
    state.queueShown = null;
    await refreshQueue();
  }

  function setBusy(row, busy) {
    row.classList.toggle('busy', busy);
    for (const b of row.querySelectorAll('button[data-action]')) {
      if (busy) b.disabled = true;
    }
  }

  // confirmDelete asks in a modal dialog; resolves true only on "Delete".
  function confirmDelete(id, node) {
    return confirmAction('Delete from the queue?',
      `Delete message ${id}${node ? ' from the queue of ' + node : ''}? It will not be delivered.`, 'Delete');
  }

  // confirmAction asks in the modal dialog; resolves true only when the
  // operator chose okLabel.
  function confirmAction(title, text, okLabel) {
    const dialog = $('confirm-dialog');
    if (dialog.open) return Promise.resolve(false);
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = okLabel;
    dialog.returnValue = '';
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
      dialog.showModal();
    });
  }

  // ---- the journey of a message ------------------------------------------

  async function showJourney(raw) {
    const id = String(raw || '').trim();
    const seq = ++state.journeySeq;
    $('journey').replaceChildren();
    if (!id) return;
    say('journey-status', `Looking up ${id}…`);
    let events;
    try {
      events = await api('GET', `${API}/journey/${encodeURIComponent(id)}`);
    } catch (err) {
      if (seq !== state.journeySeq) return;
      say('journey-status', err.status === 404
        ? `No journey known for ${id}.`
        : `Journey of ${id} unavailable: ${err.message}`, 'error');
      return;
    }
    if (seq !== state.journeySeq) return;
    // {"steps": [...]} (design.md); an older node answered the array.
    const steps = Array.isArray(events) ? events : (events && Array.isArray(events.steps) ? events.steps : []);
    const list = steps.filter((e) => e && typeof e === 'object');
    list.sort((a, b) => timeOf(a.time) - timeOf(b.time));
    if (list.length === 0) {
      say('journey-status', `No events recorded for ${id}.`);
      return;
    }
    const nodes = new Set(list.map((e) => String(e.node || '?'))).size;
    say('journey-status', `${id}: ${list.length} event(s) on ${nodes} node(s).`, 'ok');
    $('journey').replaceChildren(...list.map(journeyItem));
  }

  function journeyItem(e) {
    const node = String(e.node || '?');
    return h('li', { class: 'event', 'data-node': node, 'data-event': e.event ? String(e.event) : '' },
      h('time', { datetime: e.time ? String(e.time) : null }, fmtTime(e.time, true)),
      h('span', { class: `node-tag c${colourIndex(node)}` }, node),
      h('span', { class: 'event-name' }, e.event ? String(e.event) : ''),
      e.detail ? h('span', { class: 'event-detail' }, String(e.detail)) : null);
  }

  // ---- account lookup ----------------------------------------------------

  function accountBase(address) {
    return `${API}/accounts/${encodeURIComponent(address)}`;
  }

  async function lookupAccount(raw) {
    const address = String(raw || '').trim();
    const seq = ++state.accountSeq;
    state.account = null;
    $('account').replaceChildren();
    state.accountInfo = null;
    $('account-manage').hidden = true;
    $('account-folders').hidden = true;
    $('account-folders-body').replaceChildren();
    $('account-messages').hidden = true;
    $('account-messages-body').replaceChildren();
    $('account-pager').hidden = true;
    if (!address) return;
    say('account-status', `Looking up ${address}…`);
    let account;
    try {
      account = await api('GET', accountBase(address));
    } catch (err) {
      if (seq !== state.accountSeq) return;
      say('account-status', err.status === 404
        ? `No such account: ${address}.`
        : `Account ${address} unavailable: ${err.message}`, 'error');
      return;
    }
    if (seq !== state.accountSeq) return;
    account = account || {};
    showAccount(account);
    let folders = null;
    try {
      const list = await api('GET', accountBase(address) + '/folders');
      folders = (Array.isArray(list) ? list : []).filter((f) => f && typeof f === 'object');
    } catch {
      // a node without the mailbox routes: the messages still show
    }
    if (seq !== state.accountSeq) return;
    state.account = { address: String(account.address || address), messages: Number(account.messages) || 0, folders, folder: '', offset: 0 };
    showFolders();
    await showPage(seq);
  }

  function showAccount(a) {
    state.accountInfo = a;
    $('account-manage').hidden = false;
    $('account-toggle').textContent = a.disabled ? 'Enable account' : 'Disable account';
    $('account-toggle').dataset.disabled = String(Boolean(a.disabled));
    const used = Number(a.usedBytes) || 0;
    const quota = Number(a.quotaBytes) || 0;
    const storage = h('span', {}, `${fmtSize(used)} used of ${quota > 0 ? fmtSize(quota) : 'no quota'}`);
    if (quota > 0) storage.append(' ', h('meter', { min: 0, max: quota, value: used, 'aria-label': 'quota used' }));
    const facts = [
      ['address', 'Address', String(a.address || '')],
      ['storage', 'Storage', storage],
      ['messages', 'Messages', String(Number(a.messages) || 0)],
      ['created', 'Created', fmtTime(a.created)],
      ['partition', 'Partition', a.partition === undefined ? '—' : String(a.partition)],
      ['owner', 'Owner', a.owner ? String(a.owner) : 'no owner'],
      ['state', 'State', a.disabled ? 'disabled: mail and logins refused' : 'active'],
    ];
    $('account').replaceChildren(...facts.map(([field, label, value]) =>
      h('div', { 'data-field': field }, h('dt', {}, label), h('dd', {}, value))));
  }

  // showFolders draws the folders (each a button that shows its messages)
  // and a first row for every folder.
  function showFolders() {
    const acct = state.account;
    if (!acct || !acct.folders) return;
    const row = (name, label, messages, unseen, use) => h('tr', { 'data-folder': name, 'aria-current': acct.folder === name ? 'true' : null },
      h('td', {}, h('button', { type: 'button', class: 'link', 'data-folder-button': name, title: 'Show the messages of this folder' }, label)),
      h('td', { class: 'num' }, String(messages)),
      h('td', { class: 'num' }, String(unseen)),
      h('td', {}, use));
    const total = acct.folders.reduce((n, f) => n + (Number(f.messages) || 0), 0);
    const unseen = acct.folders.reduce((n, f) => n + (Number(f.unseen) || 0), 0);
    $('account-folders-body').replaceChildren(row('', 'All folders', total, unseen, ''),
      ...acct.folders.map((f) => row(String(f.name || ''), String(f.name || ''), Number(f.messages) || 0,
        Number(f.unseen) || 0, f.specialUse ? String(f.specialUse) : '')));
    $('account-folders').hidden = false;
  }

  // total is the number of messages of the folder on screen.
  function accountTotal(acct) {
    if (acct.folder === '' || !acct.folders) return acct.messages;
    const f = acct.folders.find((x) => String(x.name) === acct.folder);
    return f ? Number(f.messages) || 0 : 0;
  }

  // showPage lists one page of the folder on screen, newest first: one
  // more than a page is asked for, to know whether an older page exists.
  async function showPage(seq) {
    const acct = state.account;
    if (!acct) return;
    let url = `${accountBase(acct.address)}/messages?order=newest&offset=${acct.offset}&limit=${ACCOUNT_PAGE + 1}`;
    if (acct.folder) url += '&folder=' + encodeURIComponent(acct.folder);
    const mine = ++state.pageSeq;
    let messages;
    try {
      messages = await api('GET', url);
    } catch (err) {
      if (seq !== state.accountSeq || mine !== state.pageSeq) return;
      say('account-status', `Messages of ${acct.address} unavailable: ${err.message}`, 'error');
      return;
    }
    if (seq !== state.accountSeq || mine !== state.pageSeq) return;
    const list = (Array.isArray(messages) ? messages : []).filter((m) => m && typeof m === 'object');
    const older = list.length > ACCOUNT_PAGE;
    showMessages(list.slice(0, ACCOUNT_PAGE));
    const where = acct.folder ? ` in ${acct.folder}` : '';
    const total = Math.max(accountTotal(acct), acct.offset + Math.min(list.length, ACCOUNT_PAGE));
    const first = list.length > 0 ? acct.offset + 1 : 0;
    const last = acct.offset + Math.min(list.length, ACCOUNT_PAGE);
    $('account-page').textContent = `${first}–${last} of ${total}${where}, newest first`;
    $('account-newer').disabled = acct.offset === 0;
    $('account-older').disabled = !older;
    $('account-pager').hidden = !(older || acct.offset > 0);
    $('account-messages-caption').textContent = acct.folder ? `Messages in ${acct.folder}` : 'Messages';
    say('account-status', `${acct.address}: ${list.length > 0 ? `messages ${first}–${last} of ${total}${where}` : `no messages${where}`}.`, 'ok');
  }

  function showMessages(list) {
    $('account-messages-body').replaceChildren(...(list.length > 0
      ? list.map((m) => h('tr', { 'data-message-id': String(m.id || '') },
        h('td', {}, String(m.id || '')),
        h('td', {}, String(m.folder || '')),
        h('td', {}, fmtTime(m.received)),
        h('td', {}, String(m.from || '')),
        h('td', {}, String(m.subject || '')),
        h('td', {}, (Array.isArray(m.flags) ? m.flags : []).map(String).join(' ')),
        h('td', { class: 'num' }, fmtSize(m.size))))
      : [h('tr', {}, h('td', { colspan: 7, class: 'empty' }, 'No messages.'))]));
    $('account-messages').hidden = false;
  }

  function turnPage(delta) {
    const acct = state.account;
    if (!acct) return;
    acct.offset = Math.max(0, acct.offset + delta * ACCOUNT_PAGE);
    showPage(state.accountSeq);
  }

  function onFolderClick(ev) {
    const button = ev.target.closest('button[data-folder-button]');
    const acct = state.account;
    if (!button || !acct) return;
    acct.folder = button.getAttribute('data-folder-button') || '';
    acct.offset = 0;
    showFolders();
    showPage(state.accountSeq);
  }

  // ---- account management ------------------------------------------------

  // parseSize reads "2G", "500M", "64k", "1048576" (binary units); 0 or
  // an empty field is no quota.
  function parseSize(text) {
    const m = /^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$/i.exec(String(text));
    if (!m) return null;
    const shift = { '': 0, k: 10, m: 20, g: 30, t: 40 }[m[2].toLowerCase()];
    return Number(m[1]) * 2 ** shift;
  }

  async function accountChange(what, fn) {
    const a = state.accountInfo;
    if (!a) return;
    try {
      const changed = await fn(`${API}/accounts/${encodeURIComponent(a.address)}`);
      say('account-status', `${a.address}: ${what}.`, 'ok');
      if (changed && typeof changed === 'object') showAccount(changed);
    } catch (err) {
      say('account-status', `${a.address}: ${what} failed: ${err.message}`, 'error');
    }
  }

  function setPassword() {
    const pw = $('password-input').value;
    accountChange('password changed', async (base) => {
      await api('PUT', base + '/password', { password: pw });
      $('password-input').value = '';
    });
  }

  function setQuota() {
    const bytes = parseSize($('quota-input').value);
    if (bytes === null) {
      say('account-status', 'Quota: give bytes or a number with K, M, G (0 for none).', 'error');
      return;
    }
    accountChange(bytes ? `quota set to ${fmtSize(bytes)}` : 'quota removed',
      (base) => api('PATCH', base, { quotaBytes: bytes }));
  }

  async function toggleAccount() {
    const a = state.accountInfo;
    if (!a) return;
    const disable = !a.disabled;
    if (disable && !(await confirmAction('Disable the account?',
      `Disable ${a.address}? Its mail is refused (550 5.2.1) and so are its logins, until it is enabled again.`, 'Disable'))) {
      return;
    }
    accountChange(disable ? 'disabled' : 'enabled', (base) => api('PATCH', base, { disabled: disable }));
  }

  async function createAccount() {
    const address = $('create-address').value.trim();
    const body = { address, password: $('create-password').value };
    const quota = $('create-quota').value.trim();
    if (quota) {
      const bytes = parseSize(quota);
      if (bytes === null) {
        say('create-status', 'Quota: give bytes or a number with K, M, G.', 'error');
        return;
      }
      body.quotaBytes = bytes;
    }
    try {
      const a = await api('POST', API + '/accounts', body);
      say('create-status', `Created ${a && a.address ? a.address : address}.`, 'ok');
      $('create-password').value = '';
      $('account-input').value = address;
      lookupAccount(address);
    } catch (err) {
      say('create-status', `${address} not created: ${err.message}`, 'error');
    }
  }

  // ---- domains and aliases -----------------------------------------------

  async function refreshDomains() {
    let list;
    try {
      list = await api('GET', API + '/domains');
    } catch (err) {
      say('domains-status', 'Domains unavailable: ' + err.message, 'error');
      return;
    }
    $('domains').replaceChildren(...(Array.isArray(list) ? list : []).filter((d) => d && d.domain).map((d) =>
      h('li', { 'data-domain': String(d.domain), 'data-state': String(d.state || '') },
        h('span', {}, String(d.domain)),
        d.state && d.state !== 'active' ? h('span', { class: 'badge' }, String(d.state)) : null,
        h('button', { type: 'button', class: 'danger', 'data-remove-domain': String(d.domain),
          'aria-label': `Remove ${d.domain}` }, 'Remove'))));
  }

  async function addDomain() {
    const d = $('domain-input').value.trim();
    try {
      await api('POST', API + '/domains', { domain: d });
      say('domains-status', `Added ${d} on every node.`, 'ok');
      $('domain-input').value = '';
    } catch (err) {
      say('domains-status', `${d} not added: ${err.message}`, 'error');
    }
    refreshDomains();
  }

  async function onDomainsClick(ev) {
    const button = ev.target.closest('button[data-remove-domain]');
    if (!button) return;
    const d = button.dataset.removeDomain;
    if (!(await confirmAction('Remove the domain?', `Remove ${d} from every node? Its mail is refused from then on.`, 'Remove'))) {
      return;
    }
    try {
      await api('DELETE', `${API}/domains/${encodeURIComponent(d)}`);
      say('domains-status', `Removed ${d} from every node.`, 'ok');
    } catch (err) {
      say('domains-status', `${d} not removed: ${err.message}`, 'error');
    }
    refreshDomains();
  }

  async function refreshAliases() {
    let list;
    try {
      list = await api('GET', API + '/aliases');
    } catch (err) {
      say('aliases-status', 'Aliases unavailable: ' + err.message, 'error');
      return;
    }
    const rows = (Array.isArray(list) ? list : []).filter((a) => a && a.alias).map((a) =>
      h('tr', { 'data-alias': String(a.alias) },
        h('td', {}, String(a.alias)),
        h('td', {}, String(a.target || '')),
        h('td', {}, h('button', { type: 'button', class: 'danger', 'data-remove-alias': String(a.alias),
          'aria-label': `Remove ${a.alias}` }, 'Remove'))));
    $('aliases-body').replaceChildren(...(rows.length ? rows
      : [h('tr', {}, h('td', { colspan: 3, class: 'empty' }, 'No aliases.'))]));
  }

  async function addAlias() {
    const alias = $('alias-input').value.trim();
    const target = $('alias-target').value.trim();
    try {
      await api('POST', API + '/aliases', { alias, target });
      say('aliases-status', `${alias} delivers to ${target}.`, 'ok');
      $('alias-input').value = '';
      $('alias-target').value = '';
    } catch (err) {
      say('aliases-status', `${alias} not added: ${err.message}`, 'error');
    }
    refreshAliases();
  }

  async function onAliasesClick(ev) {
    const button = ev.target.closest('button[data-remove-alias]');
    if (!button) return;
    const alias = button.dataset.removeAlias;
    try {
      await api('DELETE', `${API}/aliases/${encodeURIComponent(alias)}`);
      say('aliases-status', `Removed ${alias}.`, 'ok');
    } catch (err) {
      say('aliases-status', `${alias} not removed: ${err.message}`, 'error');
    }
    refreshAliases();
  }

  // ---- the live delivery log ---------------------------------------------

  // refreshLog appends the delivery log's new lines of every node (GET
  // /api/v1/log?scope=cluster&since=), newest last, keeping the last
  // LOG_LINES_MAX.
  async function refreshLog() {
    if ($('log-pause').checked) return;
    const params = new URLSearchParams({ scope: 'cluster' });
    if (state.logSince) params.set('since', state.logSince);
    let lines;
    try {
      lines = await api('GET', API + '/log?' + params.toString());
    } catch (err) {
      say('log-status', 'Delivery log unavailable: ' + err.message, 'error');
      return;
    }
    say('log-status', '');
    const list = $('log-lines');
    const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    for (const l of Array.isArray(lines) ? lines : []) {
      if (!l || !l.line) continue;
      const key = `${l.node}/${l.seq}`;
      if (state.logSeen.has(key)) continue;
      state.logSeen.add(key);
      if (!state.logSince || timeOf(l.time) > timeOf(state.logSince)) state.logSince = String(l.time);
      list.append(h('li', { 'data-event': String(l.event || ''), 'data-node': String(l.node || ''), 'data-seq': String(l.seq),
        'data-queue-id': l.queueID ? String(l.queueID) : null },
      h('time', { datetime: String(l.time) }, fmtTime(l.time, true).slice(11, 23)),
      h('span', { class: `node-tag c${colourIndex(String(l.node))}` }, String(l.node || '?')),
      h('span', { class: 'log-line' }, String(l.line))));
    }
    while (list.children.length > LOG_LINES_MAX) {
      const first = list.firstElementChild;
      state.logSeen.delete(`${first.dataset.node}/${first.dataset.seq}`);
      first.remove();
    }
    if (atEnd) list.scrollTop = list.scrollHeight;
  }

  // ---- the answering node ------------------------------------------------

  async function refreshAnswering() {
    try {
      const st = await api('GET', API + '/settings');
      const name = st && st.name ? String(st.name) : 'this node';
      $('answering').textContent = `answered by ${name}` +
        (st && st.queueMode ? `, queue mode ${modeLabel(st.queueMode)}` : '');
    } catch (err) {
      $('answering').textContent = 'node settings unavailable: ' + err.message;
    }
  }

  // ---- start -------------------------------------------------------------

  function refreshAll() {
    refreshAnswering();
    refreshCluster();
    state.queueShown = null;
    refreshQueue();
    refreshHistory();
    refreshDomains();
    refreshAliases();
  }

  // every runs fn now and then ms after each run ends, so that slow
  // answers never pile up.
  function every(ms, fn) {
    const loop = async () => {
      try {
        await fn();
      } finally {
        setTimeout(loop, ms);
      }
    };
    loop();
  }

  function onSubmit(id, fn) {
    $(id).addEventListener('submit', (ev) => {
      ev.preventDefault();
      fn();
    });
  }

  function init() {
    $('cluster').append(
      s('g', { id: 'cluster-links' }),
      s('g', { id: 'cluster-members' }),
      s('text', { id: 'cluster-footer', class: 'footer' }));
    $('token-form').addEventListener('submit', onTokenSubmit);
    $('forget-token').addEventListener('click', forgetToken);
    $('queue-body').addEventListener('click', onQueueClick);
    $('queue-refresh').addEventListener('click', () => {
      state.queueShown = null;
      refreshQueue();
    });
    onSubmit('journey-form', () => showJourney($('journey-input').value));
    onSubmit('account-form', () => lookupAccount($('account-input').value));
    onSubmit('password-form', setPassword);
    onSubmit('quota-form', setQuota);
    onSubmit('create-form', createAccount);
    onSubmit('domain-form', addDomain);
    onSubmit('alias-form', addAlias);
    onSubmit('queue-filter', onQueueFilter);
    $('account-toggle').addEventListener('click', toggleAccount);
    $('domains').addEventListener('click', onDomainsClick);
    $('aliases-body').addEventListener('click', onAliasesClick);
    $('queue-prev').addEventListener('click', () => queuePageBy(-1));
    $('queue-next').addEventListener('click', () => queuePageBy(1));
    let searchTimer = 0;
    $('queue-search').addEventListener('input', () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(onQueueFilter, 300);
    });
    $('queue-state').addEventListener('change', onQueueFilter);
    $('queue-node').addEventListener('change', onQueueFilter);
    $('account-folders-body').addEventListener('click', onFolderClick);
    $('account-newer').addEventListener('click', () => turnPage(-1));
    $('account-older').addEventListener('click', () => turnPage(1));
    showForgetButton();
    refreshAnswering();
    refreshDomains();
    refreshAliases();
    every(CLUSTER_EVERY_MS, refreshCluster);
    every(QUEUE_EVERY_MS, refreshQueue);
    every(HISTORY_EVERY_MS, refreshHistory);
    every(LOG_EVERY_MS, refreshLog);
  }

  init();
})();
