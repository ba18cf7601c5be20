// The onnx-serve dashboard: polls GET /v2/models/stats every second, keeps a few minutes of history
// per model version in the page, and draws it with uPlot. Plain browser JavaScript, no build step.
'use strict';

const POLL_MS = 1000;
const HISTORY_POINTS = 180;
const CHART_HEIGHT = 110;
const COLORS = {
  p50: '#3b6fd8',
  p95: '#d69e2e',
  p99: '#c53030',
  alert: '#98a2b3',
  ok: '#1f9d55',
  errors: '#c53030',
  queue: '#6b46c1',
  batch: '#0f8b8d',
};

/** name:version → { el, meta, charts, history, previous } */
const cards = new Map();

function $(root, selector) {
  return root.querySelector(selector);
}

function formatNumber(value) {
  if (value === null || value === undefined) return '–';
  if (value < 10) return String(Number(value.toFixed(2)));
  if (value < 100) return String(Number(value.toFixed(1)));
  return Math.round(value).toLocaleString('en');
}

function formatMs(ms) {
  return ms === null || ms === undefined ? '–' : `${formatNumber(ms)} ms`;
}

function formatRate(perSecond) {
  return `${formatNumber(perSecond)}/s`;
}

function formatClock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString('en-GB');
}

async function getJson(url) {
  const response = await fetch(url, { cache: 'no-store' });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

// ---- charts ----------------------------------------------------------------------------------

function makeChart(container, series) {
  const axis = {
    stroke: '#667085',
    grid: { stroke: '#eef1f5', width: 1 },
    ticks: { show: false },
    font: '11px system-ui, sans-serif',
  };
  const options = {
    width: Math.max(container.clientWidth, 200),
    height: CHART_HEIGHT,
    series: [
      {},
      ...series.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: 1.5,
        dash: s.dash,
        fill: s.fill,
        points: { show: false },
      })),
    ],
    axes: [
      { ...axis, space: 70, size: 28, values: (_u, ticks) => ticks.map(formatClock) },
      { ...axis, size: 46, values: (_u, ticks) => ticks.map((t) => formatTick(t)) },
    ],
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(max * 1.1, 1)] } },
    // The caption above the chart carries the legend, with the latest values.
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
  };
  const data = [[], ...series.map(() => [])];
  const chart = new uPlot(options, data, container);
  chart.legendSeries = series;
  return chart;
}

/** The caption legend: a colour key and the latest value of each series. */
function renderLegend(element, chart) {
  const keys = chart.legendSeries.map((s, index) => {
    const values = chart.data[index + 1];
    const latest = values[values.length - 1];
    const item = document.createElement('span');
    const swatch = document.createElement('i');
    swatch.style.background = s.color;
    const value = document.createElement('b');
    value.textContent = latest === null || latest === undefined ? '–' : s.format(latest);
    item.append(swatch, `${s.label} `, value);
    return item;
  });
  element.replaceChildren(...keys);
}

function formatTick(value) {
  if (value >= 1000) return `${(value / 1000).toFixed(value >= 10000 ? 0 : 1)}k`;
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

function createCharts(el) {
  const ms = (v) => formatNumber(v);
  const rate = (v) => formatNumber(v);
  const plain = (v) => formatNumber(v);
  return {
    latency: makeChart($(el, '.chart-latency'), [
      { label: 'p50', color: COLORS.p50, format: ms },
      { label: 'p95', color: COLORS.p95, format: ms },
      { label: 'p99', color: COLORS.p99, format: ms },
      { label: 'alert', color: COLORS.alert, dash: [4, 4], format: ms },
    ]),
    throughput: makeChart($(el, '.chart-throughput'), [
      { label: 'ok', color: COLORS.ok, fill: 'rgba(31,157,85,0.08)', format: rate },
      { label: 'errors', color: COLORS.errors, format: rate },
    ]),
    queue: makeChart($(el, '.chart-queue'), [
      { label: 'queue', color: COLORS.queue, format: plain },
      { label: 'batch', color: COLORS.batch, format: plain },
    ]),
  };
}

function emptyHistory() {
  return { t: [], p50: [], p95: [], p99: [], alert: [], ok: [], errors: [], queue: [], batch: [] };
}

function pushHistory(history, point) {
  for (const key of Object.keys(history)) {
    history[key].push(point[key]);
    if (history[key].length > HISTORY_POINTS) history[key].shift();
  }
}

// ---- cards -----------------------------------------------------------------------------------

function cardFor(stats) {
  const key = `${stats.name}:${stats.version}`;
  let card = cards.get(key);
  if (card !== undefined) return card;
  const el = document.getElementById('model-card').content.firstElementChild.cloneNode(true);
  el.dataset.model = stats.name;
  el.dataset.version = stats.version;
  $(el, '.model-name').textContent = stats.name;
  $(el, '.model-name').title = stats.name;
  $(el, '.version').textContent = `v${stats.version}`;
  insertSorted(el, key);
  card = { key, el, meta: undefined, metaPending: false, charts: createCharts(el), history: emptyHistory() };
  card.previous = undefined;
  $(el, '.try-tensor').addEventListener('click', () => void sendSampleTensor(card));
  setUpDrop(card);
  new ResizeObserver(() => resizeCharts(card)).observe($(el, '.charts'));
  cards.set(key, card);
  return card;
}

function insertSorted(el, key) {
  const container = document.getElementById('models');
  const after = [...container.children].find((child) => `${child.dataset.model}:${child.dataset.version}` > key);
  container.insertBefore(el, after ?? null);
}

function resizeCharts(card) {
  for (const chart of Object.values(card.charts)) {
    const width = Math.max(chart.root.parentElement.clientWidth, 200);
    if (width !== chart.width) chart.setSize({ width, height: CHART_HEIGHT });
  }
}

function setChip(chip, text, tone) {
  chip.textContent = text;
  chip.className = `chip ${chip.classList[1]} ${tone}`;
}

function updateCard(card, stats, now) {
  const { el } = card;
  const { rolling } = stats;
  const stateTone = stats.state === 'READY' ? 'ok' : stats.state === 'UNAVAILABLE' ? 'bad' : 'warn';
  setChip($(el, '.state'), stats.state.toLowerCase(), stateTone);
  const degraded = rolling.status === 'degraded';
  setChip($(el, '.health'), rolling.status, degraded ? 'warn' : 'ok');
  $(el, '.health').title = `p95 ${formatMs(rolling.p95_ms)} against the ${rolling.latency_alert_ms} ms alert threshold`;
  el.classList.toggle('degraded', degraded);
  el.dataset.state = stats.state;

  const success = stats.inference_stats.success.count;
  const failed = stats.inference_stats.fail.count;
  $(el, '.kpi-throughput').textContent = formatNumber(rolling.throughput_per_s);
  $(el, '.kpi-p50').textContent = formatNumber(rolling.p50_ms);
  $(el, '.kpi-p95').textContent = formatNumber(rolling.p95_ms);
  $(el, '.kpi-p99').textContent = formatNumber(rolling.p99_ms);
  $(el, '.kpi-requests').textContent = success.toLocaleString('en');
  $(el, '.kpi-errors').textContent = failed.toLocaleString('en');
  $(el, '.kpi-errors').classList.toggle('nonzero', failed > 0);
  $(el, '.kpi-queue').textContent = String(stats.pending_request_count);

  // Rates from the cumulative counters between two polls: live, where the rolling figure averages 10 s.
  const previous = card.previous;
  const seconds = previous === undefined ? 0 : (now - previous.now) / 1000;
  const rate = (value, before) => (seconds > 0 ? Math.max(0, value - before) / seconds : 0);
  pushHistory(card.history, {
    t: now / 1000,
    p50: rolling.p50_ms,
    p95: rolling.p95_ms,
    p99: rolling.p99_ms,
    alert: rolling.latency_alert_ms,
    ok: previous === undefined ? 0 : rate(success, previous.success),
    errors: previous === undefined ? 0 : rate(failed, previous.failed),
    queue: stats.pending_request_count,
    batch: rolling.batch_size_mean,
  });
  card.previous = { now, success, failed };
  const h = card.history;
  card.charts.latency.setData([h.t, h.p50, h.p95, h.p99, h.alert]);
  card.charts.throughput.setData([h.t, h.ok, h.errors]);
  card.charts.queue.setData([h.t, h.queue, h.batch]);
  for (const name of Object.keys(card.charts)) renderLegend($(el, `.legend-${name}`), card.charts[name]);

  // A model back from UNLOADED (on-demand loading) has its metadata read again: its load counts changed.
  const reloaded = card.lastState === 'UNLOADED' && stats.state === 'READY';
  card.lastState = stats.state;
  if (stats.state === 'READY' && (card.meta === undefined || reloaded) && !card.metaPending) {
    void loadMetadata(card, stats);
  }
  if (stats.state !== 'READY') showUnready(card, stats);
}

function showUnready(card, stats) {
  const reason = $(card.el, '.reason');
  reason.hidden = stats.state !== 'UNAVAILABLE';
  $(card.el, '.try-tensor').disabled = true;
  const waiting = { LOADING: 'loading…', UNLOADED: 'unloaded · loads on its next request' };
  if (stats.state !== 'READY') $(card.el, '.runtime').textContent = waiting[stats.state] ?? '';
  if (!reason.hidden && reason.textContent === '') {
    // The ready endpoint answers 503 with the reason in its body.
    fetch(`/v2/models/${encodeURIComponent(stats.name)}/versions/${stats.version}/ready`)
      .then((response) => response.json())
      .then((body) => (reason.textContent = body.reason ?? 'unavailable'))
      .catch(() => (reason.textContent = 'unavailable'));
  }
}

async function loadMetadata(card, stats) {
  card.metaPending = true;
  try {
    const meta = await getJson(`/v2/models/${encodeURIComponent(stats.name)}/versions/${stats.version}`);
    card.meta = meta;
    renderMetadata(card, meta);
  } catch (error) {
    console.warn(`metadata of ${card.key}: ${error.message}`);
  } finally {
    card.metaPending = false;
  }
}

function renderMetadata(card, meta) {
  const { el } = card;
  const r = meta.runtime;
  // A pipeline runs other models and has no session of its own: its steps say what it is.
  $(el, '.runtime').title = $(el, '.runtime').textContent =
    r === undefined
      ? `pipeline · ${[meta.predict?.pipeline?.detector, meta.predict?.pipeline?.orientation, meta.predict?.pipeline?.recognizer].filter(Boolean).join(' → ')}`
      : `${meta.execution_provider} · ${r.instances} instance${r.instances === 1 ? '' : 's'} × ${r.intra_op_threads} thread${r.intra_op_threads === 1 ? '' : 's'}` +
        ` · load ${r.load_ms} ms · warmup ${r.warmup_runs} runs ${r.warmup_ms} ms` +
        (r.on_demand === undefined
          ? ''
          : ` · on demand: ${r.on_demand.loads} load${r.on_demand.loads === 1 ? '' : 's'}, ${r.on_demand.evictions} eviction${r.on_demand.evictions === 1 ? '' : 's'}, ${(r.on_demand.memory_bytes / 1048576).toFixed(1)} MB`);
  const body = $(el, '.io tbody');
  body.replaceChildren();
  for (const [kind, list] of [
    ['in', meta.inputs],
    ['out', meta.outputs],
  ]) {
    for (const tensor of list) {
      const row = document.createElement('tr');
      for (const text of [kind, tensor.name, tensor.datatype, `[${tensor.shape.join(', ')}]`]) {
        const cell = document.createElement('td');
        cell.textContent = text;
        row.append(cell);
      }
      body.append(row);
    }
  }
  const shapes = meta.inputs.map((input) => `${input.name} ${sampleShape(meta, input).join('×')}`);
  $(el, '.try-shape').textContent = shapes.join(', ');
  $(el, '.try-tensor').disabled = meta.inputs.length === 0;
  // Models with an image pipeline advertise it in their metadata; only they get the drop zone.
  $(el, '.drop').hidden = meta.predict === undefined;
}

// ---- try it ----------------------------------------------------------------------------------

const TYPED_ARRAYS = {
  BOOL: Uint8Array,
  UINT8: Uint8Array,
  INT8: Int8Array,
  UINT16: Uint16Array,
  INT16: Int16Array,
  FP16: Uint16Array,
  UINT32: Uint32Array,
  INT32: Int32Array,
  UINT64: BigUint64Array,
  INT64: BigInt64Array,
  FP32: Float32Array,
  FP64: Float64Array,
};

/** The shape to send: the warmup's (known to run), else the declared one with dynamic dimensions filled in. */
function sampleShape(meta, input) {
  const warm = meta.runtime?.warmup_shapes?.[input.name];
  if (Array.isArray(warm)) return warm;
  return input.shape.map((d, i) => (d >= 0 ? d : i === 0 ? 1 : 32));
}

function randomTensorBytes(datatype, count) {
  if (datatype === 'BYTES') {
    const element = new TextEncoder().encode('sample');
    const bytes = new Uint8Array(count * (4 + element.length));
    const view = new DataView(bytes.buffer);
    for (let i = 0, offset = 0; i < count; i++, offset += 4 + element.length) {
      view.setUint32(offset, element.length, true);
      bytes.set(element, offset + 4);
    }
    return bytes;
  }
  const Type = TYPED_ARRAYS[datatype];
  if (Type === undefined) throw new Error(`cannot build sample data of type ${datatype}`);
  const data = new Type(count);
  for (let i = 0; i < count; i++) {
    if (datatype === 'FP32' || datatype === 'FP64') data[i] = Math.random();
    else if (datatype === 'FP16')
      data[i] = 0x3800; // 0.5
    else if (datatype === 'BOOL') data[i] = Math.random() < 0.5 ? 0 : 1;
    else if (data instanceof BigInt64Array || data instanceof BigUint64Array) data[i] = BigInt(i % 10);
    else data[i] = i % 10;
  }
  return new Uint8Array(data.buffer);
}

/** Random data of the model's declared shape, sent with the binary tensor extension (no huge JSON). */
async function sendSampleTensor(card) {
  const { meta, el } = card;
  if (meta === undefined) return;
  const button = $(el, '.try-tensor');
  button.disabled = true;
  try {
    const tensors = meta.inputs.map((input) => {
      const shape = sampleShape(meta, input);
      const bytes = randomTensorBytes(
        input.datatype,
        shape.reduce((a, b) => a * b, 1),
      );
      return { name: input.name, datatype: input.datatype, shape, bytes };
    });
    const header = new TextEncoder().encode(
      JSON.stringify({
        inputs: tensors.map(({ name, datatype, shape, bytes }) => ({
          name,
          datatype,
          shape,
          parameters: { binary_data_size: bytes.byteLength },
        })),
        parameters: { binary_data_output: true },
      }),
    );
    const body = new Blob([header, ...tensors.map((t) => t.bytes)]);
    const started = performance.now();
    const response = await fetch(
      `/v2/models/${encodeURIComponent(meta.name)}/versions/${card.key.split(':').pop()}/infer`,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/octet-stream',
          'inference-header-content-length': String(header.byteLength),
        },
        body,
      },
    );
    const buffer = await response.arrayBuffer();
    const latency = performance.now() - started;
    const sent = tensors.map((t) => `${t.name} ${t.datatype} [${t.shape.join(', ')}]`).join(', ');
    if (!response.ok) {
      const { error } = JSON.parse(new TextDecoder().decode(buffer));
      showResult(card, `HTTP ${response.status} after ${formatMs(latency)}\n${error}`, true);
      return;
    }
    showResult(
      card,
      `sent ${sent}\nanswered in ${formatMs(latency)} (round trip)\n${describeOutputs(response, buffer)}`,
    );
  } catch (error) {
    showResult(card, error.message, true);
  } finally {
    button.disabled = false;
  }
}

function describeOutputs(response, buffer) {
  const headerLength = Number(response.headers.get('inference-header-content-length') ?? buffer.byteLength);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 0, headerLength)));
  let offset = headerLength;
  return header.outputs
    .map((output) => {
      let values = output.data;
      const size = output.parameters?.binary_data_size;
      if (size !== undefined) {
        const Type = TYPED_ARRAYS[output.datatype];
        const blob = buffer.slice(offset, offset + size);
        offset += size;
        values = Type === undefined ? [] : [...new Type(blob).subarray(0, 8)];
      }
      const first = (values ?? [])
        .slice(0, 8)
        .map((v) => (typeof v === 'number' ? Number(v.toPrecision(4)) : String(v)));
      return `${output.name} ${output.datatype} [${output.shape.join(', ')}]\n  first values: ${first.join(', ')}`;
    })
    .join('\n');
}

function showResult(card, text, failed = false) {
  const result = $(card.el, '.try-result');
  result.hidden = false;
  result.textContent = text;
  result.classList.toggle('failed', failed);
}

function setUpDrop(card) {
  const drop = $(card.el, '.drop');
  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    const file = event.dataTransfer?.files?.[0];
    if (file !== undefined) void sendImage(card, file);
  });
  const picker = $(card.el, '.pick-file');
  picker.addEventListener('change', () => {
    const file = picker.files?.[0];
    if (file !== undefined) void sendImage(card, file);
    picker.value = '';
  });
}

const SVG = 'http://www.w3.org/2000/svg';

/**
 * The image with its boxes drawn and numbered, and beside it what was read in each (OCR lines) or
 * its score (detector boxes): for answers whose first result is a list of boxes.
 */
function showBoxes(card, file, answer) {
  const view = $(card.el, '.predict-view');
  const found = answer?.results?.[0];
  const image = answer?.images?.[0];
  if (!Array.isArray(found) || image === undefined || !found.every((item) => Array.isArray(item?.box))) {
    view.hidden = true;
    return;
  }
  const img = $(view, 'img');
  if (img.src.startsWith('blob:')) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(file);
  const svg = $(view, '.predict-boxes');
  svg.setAttribute('viewBox', `0 0 ${image.width} ${image.height}`);
  // In image pixels: the picture is shown about 250 px wide, so this is about 14 px on screen.
  const fontSize = Math.max(12, Math.round(image.width / 18));
  svg.replaceChildren();
  const list = $(view, '.predict-lines');
  list.replaceChildren();
  found.forEach((item, i) => {
    const polygon = document.createElementNS(SVG, 'polygon');
    polygon.setAttribute('points', item.box.map((p) => p.join(',')).join(' '));
    polygon.setAttribute('vector-effect', 'non-scaling-stroke');
    const label = document.createElementNS(SVG, 'text');
    label.setAttribute('x', String(item.box[0][0]));
    label.setAttribute('y', String(Math.max(fontSize, item.box[0][1] - 2)));
    label.setAttribute('font-size', String(fontSize));
    label.setAttribute('stroke-width', String(fontSize / 5));
    label.textContent = String(i + 1);
    svg.append(polygon, label);
    const line = document.createElement('li');
    const what = document.createElement('span');
    what.textContent = item.text ?? 'text box';
    const score = document.createElement('small');
    score.textContent = ` ${((item.confidence ?? item.score ?? 0) * 100).toFixed(0)} %`;
    line.append(what, score);
    list.append(line);
  });
  view.hidden = false;
}

async function sendImage(card, file) {
  const started = performance.now();
  try {
    const response = await fetch(`/v2/models/${encodeURIComponent(card.meta.name)}/predict`, {
      method: 'POST',
      headers: { 'content-type': file.type || 'application/octet-stream' },
      body: file,
    });
    const text = await response.text();
    const latency = performance.now() - started;
    let pretty = text;
    try {
      pretty = JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      // not JSON: shown as it came
    }
    let answer;
    try {
      answer = JSON.parse(text);
    } catch {
      answer = undefined;
    }
    showBoxes(card, file, response.ok ? answer : undefined);
    const clipped = pretty.length > 4000 ? `${pretty.slice(0, 4000)}\n…` : pretty;
    showResult(card, `${file.name}: HTTP ${response.status} in ${formatMs(latency)}\n${clipped}`, !response.ok);
  } catch (error) {
    showResult(card, error.message, true);
  }
}

// ---- polling ---------------------------------------------------------------------------------

function renderSummary(all) {
  const ready = all.filter((s) => s.state === 'READY').length;
  const degraded = all.filter((s) => s.rolling.status === 'degraded').length;
  const throughput = all.reduce((sum, s) => sum + s.rolling.throughput_per_s, 0);
  const requests = all.reduce((sum, s) => sum + s.inference_stats.success.count, 0);
  const errors = all.reduce((sum, s) => sum + s.inference_stats.fail.count, 0);
  const items = [
    [`${ready} / ${all.length}`, 'model versions ready'],
    [formatRate(throughput), 'throughput (10 s)'],
    [requests.toLocaleString('en'), 'requests served'],
    [errors.toLocaleString('en'), 'failed requests'],
    [String(degraded), 'degraded'],
  ];
  document.getElementById('summary').replaceChildren(
    ...items.map(([value, label]) => {
      const stat = document.createElement('div');
      stat.className = 'stat';
      const b = document.createElement('b');
      b.textContent = value;
      const span = document.createElement('span');
      span.textContent = label;
      stat.append(b, span);
      return stat;
    }),
  );
}

async function poll() {
  const health = document.getElementById('server-health');
  let all;
  let ready;
  try {
    [{ model_stats: all }, ready] = await Promise.all([
      getJson('/v2/models/stats'),
      fetch('/v2/health/ready', { cache: 'no-store' }).then((r) => r.json()),
    ]);
  } catch (error) {
    health.textContent = 'unreachable';
    health.className = 'pill bad';
    document.getElementById('updated').textContent = error.message;
    return;
  } finally {
    setTimeout(poll, POLL_MS);
  }
  // Outside the try: a bug in rendering must reach the console, not pass for a network failure.
  const now = Date.now();
  for (const stats of all) updateCard(cardFor(stats), stats, now);
  renderSummary(all);
  health.textContent = ready.ready ? 'ready' : 'not ready';
  health.className = `pill ${ready.ready ? 'ok' : 'warn'}`;
  document.getElementById('updated').textContent = `updated ${new Date(now).toLocaleTimeString('en-GB')}`;
}

// A handle for the browser console and the dashboard test: every card with its charts and history.
window.onnxServeDashboard = { cards };

getJson('/v2')
  .then((info) => (document.getElementById('server-version').textContent = `v${info.version}`))
  .catch(() => undefined);
void poll();
