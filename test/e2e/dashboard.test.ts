/**
 * The dashboard in Debian's Chromium (driven by playwright-core, no browser download) against the
 * real server: every model listed, counters and charts follow the traffic, "try it" answers, and
 * the console stays clean. The screenshot lands in test-artifacts/dashboard.png.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { after, before, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { RunningServer } from '../../src/server/start.js';
import { renderPhoto } from '../helpers/ocr-photos.js';
import { postJson, startTestServer } from '../helpers/server.js';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

let server: RunningServer;
let browser: Browser;
let page: Page;
const consoleErrors: string[] = [];

before(async () => {
  server = await startTestServer();
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(error.message));
});
after(async () => {
  await browser?.close();
  await server?.close();
});

const orientation = '.card[data-model="text-orientation"]';
const text = (selector: string) => page.locator(selector).innerText();

it('lists every model with its state, provider and inputs', async () => {
  const response = await page.goto(`${server.url}/`);
  assert.equal(response?.status(), 200);
  await page.waitForSelector('.card[data-state="READY"] >> nth=3');
  const cards = await page.locator('.card').all();
  const models = await Promise.all(
    cards.map(async (card) => [await card.getAttribute('data-model'), await card.getAttribute('data-version')]),
  );
  assert.deepEqual(models, [
    ['ocr', '1'],
    ['text-detector', '1'],
    ['text-orientation', '1'],
    ['text-recognizer', '1'],
  ]);
  await page.waitForSelector(`${orientation} .try-shape:not(:empty)`);
  assert.equal(await text(`${orientation} .state`), 'ready');
  assert.equal(await text(`${orientation} .health`), 'healthy');
  assert.match(
    await text(`${orientation} .runtime`),
    /^cpu · \d+ instances? × 1 thread · load \d+ ms · warmup \d+ runs \d+ ms$/,
  );
  assert.equal(await text(`${orientation} .try-shape`), 'x 1×3×48×192');
  assert.equal(await page.locator(`${orientation} .io tbody tr`).count(), 2);
  // The model advertises /predict in its metadata: it gets the image drop zone, as does the ocr pipeline.
  assert.equal(await page.locator(`${orientation} .drop`).isHidden(), false);
  const ocr = '.card[data-model="ocr"]';
  await page.waitForSelector(
    `${ocr} .runtime:text-is("pipeline · text-detector → text-orientation → text-recognizer")`,
  );
  assert.equal(await page.locator(`${ocr} .drop`).isHidden(), false);
});

it('follows traffic: counters, latency and throughput charts, errors', async () => {
  assert.equal(await text(`${orientation} .kpi-requests`), '0');
  const body = {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: new Array(3 * 48 * 192).fill(0.5) }],
  };
  for (let i = 0; i < 30; i++) {
    assert.equal((await postJson(`${server.url}/v2/models/text-orientation/infer`, body)).status, 200);
  }
  assert.equal((await postJson(`${server.url}/v2/models/text-orientation/infer`, '{}')).status, 400);
  await page.waitForSelector(`${orientation} .kpi-requests:text-is("30")`);
  await page.waitForSelector(`${orientation} .kpi-errors:text-is("1")`);
  assert.match(await text(`${orientation} .kpi-p95`), /^\d+(\.\d+)?$/);
  // A string, not a function: tsx would wrap a function's inner helpers in a __name() the page lacks.
  const charts: Record<string, number[]> = await page.evaluate(`(() => {
    const card = window.onnxServeDashboard.cards.get('text-orientation:1');
    const series = (chart, index) => chart.data[index].filter((v) => v !== null);
    return {
      p95: series(card.charts.latency, 2),
      ok: series(card.charts.throughput, 1),
      errors: series(card.charts.throughput, 2),
      batch: series(card.charts.queue, 2),
    };
  })()`);
  assert.ok(
    charts.p95.some((v) => v > 0),
    'the latency chart plots the p95',
  );
  assert.ok(
    charts.ok.some((v) => v > 0),
    'the throughput chart shows the requests',
  );
  assert.ok(
    charts.errors.some((v) => v > 0),
    'the throughput chart shows the failed request',
  );
  assert.ok(charts.batch.includes(1), 'the batch size chart shows batches of 1');
  // The other models saw nothing.
  assert.equal(await text('.card[data-model="text-recognizer"] .kpi-requests'), '0');
});

it('tries a model with a sample tensor and shows the answer', async () => {
  await page.click(`${orientation} .try-tensor`);
  await page.waitForSelector(`${orientation} .try-result:not([hidden])`);
  const result = await text(`${orientation} .try-result`);
  assert.match(
    result,
    /^sent x FP32 \[1, 3, 48, 192\]\nanswered in \d+(\.\d+)? ms \(round trip\)\nsoftmax_0\.tmp_0 FP32 \[1, 2\]\n {2}first values: [\d.e-]+, [\d.e-]+$/,
  );
  await page.waitForSelector(`${orientation} .kpi-requests:text-is("31")`);
});

it('reads a photo chosen with the file picker: boxes drawn and numbered on it, lines beside it', async () => {
  const ocr = '.card[data-model="ocr"]';
  const photo = await renderPhoto({
    name: 'note',
    width: 560,
    height: 260,
    paper: '#ffffff',
    tilt: 5,
    rows: [
      { text: 'Invoice 2026-0042', x: 40, y: 80, size: 30 },
      { text: 'Total due 1,234.56 EUR', x: 40, y: 170, size: 30 },
    ],
  });
  await page.setInputFiles(`${ocr} .pick-file`, { name: 'note.jpg', mimeType: 'image/jpeg', buffer: photo.jpeg });
  await page.waitForSelector(`${ocr} .predict-view:not([hidden])`);
  assert.deepEqual(await page.locator(`${ocr} .predict-lines li span`).allInnerTexts(), photo.truth);
  assert.equal(await page.locator(`${ocr} .predict-boxes polygon`).count(), 2);
  assert.deepEqual(await page.locator(`${ocr} .predict-boxes text`).allTextContents(), ['1', '2']);
  // The boxes sit on the picture: the overlay covers the image exactly.
  const [image, overlay] = await Promise.all([
    page.locator(`${ocr} .predict-image img`).boundingBox(),
    page.locator(`${ocr} .predict-boxes`).boundingBox(),
  ]);
  assert.ok(image !== null && image.width > 100, JSON.stringify(image));
  assert.deepEqual(overlay, image);
  assert.match(await text(`${ocr} .try-result`), /^note\.jpg: HTTP 200 in /);
  await mkdir('test-artifacts', { recursive: true });
  await page.locator(ocr).screenshot({ path: 'test-artifacts/dashboard-predict.png' });
});

it('reads a photo dropped on the drop zone', async () => {
  const ocr = '.card[data-model="ocr"]';
  const photo = await renderPhoto({
    name: 'word',
    width: 330,
    height: 70,
    paper: '#ffffff',
    rows: [{ text: 'Maintenance', x: 14, y: 50, size: 40 }],
  });
  // A string, not a function (see above); the page builds the dropped file from the bytes.
  const dataTransfer = await page.evaluateHandle(`(() => {
    const bytes = Uint8Array.from(atob('${photo.jpeg.toString('base64')}'), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], 'word.jpg', { type: 'image/jpeg' }));
    return transfer;
  })()`);
  await page.dispatchEvent(`${ocr} .drop`, 'drop', { dataTransfer });
  await page.waitForSelector(`${ocr} .try-result:text-matches("^word\\.jpg: HTTP 200")`);
  assert.deepEqual(await page.locator(`${ocr} .predict-lines li span`).allInnerTexts(), ['Maintenance']);
});

it('has no console errors, and leaves a screenshot', async () => {
  await mkdir('test-artifacts', { recursive: true });
  await page.screenshot({ path: 'test-artifacts/dashboard.png', fullPage: true });
  assert.deepEqual(consoleErrors, []);
});
