/**
 * POST /v2/models/{model}/predict on the default repository: photos the test renders itself go in,
 * text comes out, through the real server and the real PP-OCR models.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { DEFAULT_MODEL_REPOSITORY, type RunningServer } from '../../src/server/start.js';
import { OCR_ASSETS, renderDocument, renderTextLine, type DocumentLine } from '../helpers/ocr.js';
import { getJson, postJson, startTestServer } from '../helpers/server.js';

let server: RunningServer;

before(async () => {
  // The default repository, plus the orientation model again as a plain file: a model without preprocessing.
  server = await startTestServer({
    modelRepository: DEFAULT_MODEL_REPOSITORY,
    modelFiles: [path.join(OCR_ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx')],
  });
});
after(async () => {
  await server?.close();
});

async function predict(model: string, body: Buffer | FormData, contentType?: string) {
  const response = await fetch(`${server.url}/v2/models/${model}/predict`, {
    method: 'POST',
    headers: contentType === undefined ? {} : { 'content-type': contentType },
    body,
  });
  return { status: response.status, body: (await response.json()) as any };
}

const LINES: DocumentLine[] = [
  { text: 'Invoice 2026-0042', x: 40, y: 70 },
  { text: 'Total due: 1,234.56 EUR', x: 40, y: 150 },
  { text: 'Ship to 17 Baker Street', x: 40, y: 230 },
  { text: 'Order 98765 confirmed', x: 60, y: 330 },
  { text: 'Page 3 of 7', x: 420, y: 430 },
];

type Box = { left: number; top: number; right: number; bottom: number };

/** The answered box covers most of the line's ink and is not much larger than it. */
function assertOnInk(answered: number[][], ink: Box, what: string): void {
  const xs = answered.map((p) => p[0]);
  const ys = answered.map((p) => p[1]);
  const area = (Math.max(...xs) - Math.min(...xs)) * (Math.max(...ys) - Math.min(...ys));
  const width = Math.min(Math.max(...xs), ink.right) - Math.max(Math.min(...xs), ink.left);
  const height = Math.min(Math.max(...ys), ink.bottom) - Math.max(Math.min(...ys), ink.top);
  const inkArea = (ink.right - ink.left) * (ink.bottom - ink.top);
  const covered = (Math.max(0, width) * Math.max(0, height)) / inkArea;
  const message = `${what}: box ${JSON.stringify(answered)}, ink ${JSON.stringify(ink)}`;
  assert.ok(covered > 0.85, message);
  assert.ok(area < 2 * inkArea, message);
}

let page: { png: Buffer; inkBoxes: Box[] };

describe('ocr pipeline', () => {
  before(async () => {
    page = await renderDocument(640, 480, LINES);
  });

  it('reads every line of a rendered document exactly, in reading order, with boxes on the text', async () => {
    const { status, body } = await predict('ocr', page.png, 'image/png');
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.model_name, 'ocr');
    assert.deepEqual(body.images, [{ name: 'request body', width: 640, height: 480 }]);
    const lines = body.results[0];
    assert.deepEqual(
      lines.map((line: { text: string }) => line.text),
      LINES.map((line) => line.text),
    );
    lines.forEach((line: { box: number[][]; confidence: number }, i: number) => {
      assert.equal(line.box.length, 4);
      assertOnInk(line.box, page.inkBoxes[i], `line ${i}`);
      assert.ok(line.confidence > 0.8 && line.confidence <= 1);
    });
    for (const stage of ['decode', 'preprocess', 'queue', 'infer', 'postprocess', 'total']) {
      assert.equal(typeof body.timings_ms[stage], 'number', stage);
    }
  });

  it('gives the same text for the same page as JPEG, PNG and WebP', async () => {
    const texts = [];
    for (const [type, bytes] of [
      ['image/png', page.png],
      ['image/jpeg', await sharp(page.png).jpeg({ quality: 90 }).toBuffer()],
      ['image/webp', await sharp(page.png).webp({ quality: 90 }).toBuffer()],
    ] as const) {
      const { status, body } = await predict('ocr', bytes, type);
      assert.equal(status, 200, `${type}: ${JSON.stringify(body)}`);
      texts.push(body.results[0].map((line: { text: string }) => line.text));
    }
    assert.deepEqual(texts, [texts[0], texts[0], texts[0]]);
    assert.deepEqual(
      texts[0],
      LINES.map((line) => line.text),
    );
  });

  it('turns an EXIF-rotated JPEG upright before reading it', async () => {
    // Pixels stored a quarter turn counter-clockwise; EXIF orientation 6 tells viewers to turn them back.
    const rotated = await sharp(page.png).rotate(270).jpeg({ quality: 90 }).withMetadata({ orientation: 6 }).toBuffer();
    assert.deepEqual(
      await sharp(rotated)
        .metadata()
        .then((m) => [m.width, m.height, m.orientation]),
      [480, 640, 6],
    );
    const { status, body } = await predict('ocr', rotated, 'image/jpeg');
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.images, [{ name: 'request body', width: 640, height: 480 }]);
    assert.deepEqual(
      body.results[0].map((line: { text: string }) => line.text),
      LINES.map((line) => line.text),
    );
    body.results[0].forEach((line: { box: number[][] }, i: number) =>
      assertOnInk(line.box, page.inkBoxes[i], `line ${i}`),
    );
  });

  it('answers each file of a multipart form, in order', async () => {
    const texts = ['Alpha 101', 'Bravo 202', 'Charlie 303'];
    const form = new FormData();
    for (const [i, text] of texts.entries()) {
      form.append('images', new Blob([await renderTextLine(text)], { type: 'image/png' }), `line-${i}.png`);
    }
    const response = await fetch(`${server.url}/v2/models/ocr/predict`, { method: 'POST', body: form });
    const answer = (await response.json()) as any;
    assert.equal(response.status, 200, JSON.stringify(answer));
    assert.deepEqual(
      answer.images.map((image: { name: string }) => image.name),
      ['file line-0.png', 'file line-1.png', 'file line-2.png'],
    );
    assert.deepEqual(
      answer.results.map((lines: Array<{ text: string }>) => lines.map((line) => line.text)),
      texts.map((text) => [text]),
    );
  });
});

describe('single models through /predict', () => {
  it('text-recognizer reads one line, with its confidence', async () => {
    const { status, body } = await predict('text-recognizer', await renderTextLine('Hello World 2026'), 'image/png');
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.results.length, 1);
    assert.equal(body.results[0].text, 'Hello World 2026');
    assert.ok(body.results[0].confidence > 0.9);
  });

  it('text-orientation ranks 0 over 180 for an upright line, and 180 first once it is turned', async () => {
    const line = await renderTextLine('Upright text 42');
    const turned = await sharp(line).rotate(180).png().toBuffer();
    const form = new FormData();
    form.append('a', new Blob([line], { type: 'image/png' }), 'upright.png');
    form.append('b', new Blob([turned], { type: 'image/png' }), 'turned.png');
    const response = await fetch(`${server.url}/v2/models/text-orientation/predict`, { method: 'POST', body: form });
    const body = (await response.json()) as any;
    assert.equal(response.status, 200, JSON.stringify(body));
    assert.deepEqual(
      body.results.map((labels: Array<{ label: string }>) => labels.map((l) => l.label)),
      [
        ['0', '180'],
        ['180', '0'],
      ],
    );
    assert.ok(body.results[0][0].score > 0.9);
  });

  it('models advertise /predict in their metadata, and the server lists the extension', async () => {
    assert.ok((await getJson(`${server.url}/v2`)).body.extensions.includes('predict'));
    const orientation = await getJson(`${server.url}/v2/models/text-orientation`);
    assert.equal(orientation.body.predict.endpoint, '/v2/models/text-orientation/predict');
    assert.equal(orientation.body.predict.answers, 'top_k');
    const ocr = await getJson(`${server.url}/v2/models/ocr`);
    assert.equal(ocr.status, 200);
    assert.equal(ocr.body.state, 'READY');
    assert.equal(ocr.body.predict.answers, 'ocr');
    assert.equal((await getJson(`${server.url}/v2/models/ocr/ready`)).status, 200);
  });

  it('a model without preprocessing refuses images with 400 and points at /infer', async () => {
    const { status, body } = await predict('ch_ppocr_mobile_v2.0_cls_infer', await renderTextLine('Hi'), 'image/png');
    assert.equal(status, 400);
    assert.equal(
      body.error,
      'model ch_ppocr_mobile_v2.0_cls_infer has no preprocess and postprocess in its config.yaml, so it cannot take images; see docs/images.md, or send tensors to /v2/models/ch_ppocr_mobile_v2.0_cls_infer/infer',
    );
  });

  it('a pipeline takes no tensors', async () => {
    const { status, body } = await postJson(`${server.url}/v2/models/ocr/infer`, { inputs: [] });
    assert.equal(status, 400);
    assert.equal(body.error, 'model ocr is a pipeline of other models: send images to /v2/models/ocr/predict');
  });
});

/** A PNG that claims width×height in its header and holds not a single pixel. */
function pngWithoutPixels(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type), data])));
    return Buffer.concat([length, Buffer.from(type), data, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, deflate, no filter, no interlace
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([
    signature,
    chunk('IHDR', header),
    chunk('IDAT', Buffer.alloc(0)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('bad uploads', () => {
  it('refuses a body that is not an image, with 415', async () => {
    const text = Buffer.from('this is a text file, not a photo\n');
    const plain = await predict('ocr', text, 'text/plain');
    assert.equal(plain.status, 415);
    assert.equal(
      plain.body.error,
      'Content-Type text/plain is not an image; send image/* (JPEG, PNG, WebP, GIF, TIFF, AVIF) or multipart/form-data with image files',
    );
    const disguised = await predict('ocr', text, 'image/png');
    assert.equal(disguised.status, 415);
    assert.match(
      disguised.body.error,
      /^request body is not an image \(expected JPEG, PNG, WebP, GIF, TIFF, AVIF\/HEIF\): Input buffer contains unsupported image format$/,
    );
  });

  it('refuses a truncated PNG with 400, naming the format', async () => {
    const png = await renderTextLine('cut short');
    const { status, body } = await predict('text-recognizer', png.subarray(0, Math.floor(png.length / 2)), 'image/png');
    assert.equal(status, 400);
    assert.match(body.error, /^request body is a PNG image that cannot be decoded \(corrupt or truncated\): /);
  });

  it('refuses a 30000×30000 PNG from its header alone with 413, and keeps serving', async () => {
    const form = new FormData();
    form.append('page', new Blob([pngWithoutPixels(30000, 30000)], { type: 'image/png' }), 'huge.png');
    const response = await fetch(`${server.url}/v2/models/ocr/predict`, { method: 'POST', body: form });
    assert.equal(response.status, 413);
    assert.deepEqual(await response.json(), {
      error:
        'file huge.png is 30000×30000 = 900000000 pixels, over the limit of 64000000; scale it down or raise --max-image-pixels',
    });
    const after = await predict('text-recognizer', await renderTextLine('Still here 7'), 'image/png');
    assert.equal(after.status, 200);
    assert.equal(after.body.results[0].text, 'Still here 7');
    assert.equal((await getJson(`${server.url}/v2/health/ready`)).status, 200);
  });
});
