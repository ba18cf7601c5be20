import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PreprocessConfig } from '../../src/config/processing-config.js';
import type { RgbImage } from '../../src/processing/image-decode.js';
import { compilePreprocess, preprocessImages, resizedForModel } from '../../src/processing/preprocess.js';
import type { TensorSpec } from '../../src/runtime/signature.js';

const input = (dims: Array<number | string>, datatype: TensorSpec['datatype'] = 'FP32'): TensorSpec[] => [
  { name: 'x', datatype, ortType: datatype === 'UINT8' ? 'uint8' : 'float32', dims },
];

/** An image of one colour. */
function solid(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, i * 3);
  return { data, width, height };
}

async function run(config: PreprocessConfig, dims: Array<number | string>, images: RgbImage[]) {
  return preprocessImages(images, compilePreprocess(config, input(dims), 'm'));
}

describe('preprocessing', () => {
  it('stretches to the static input size, BGR, scale, mean and std per tensor channel, NCHW', async () => {
    const { tensor, placements } = await run(
      { channel_order: 'bgr', mean: [0.5, 0, 0], std: [0.5, 1, 2] },
      ['N', 3, 2, 2],
      [solid(5, 3, [255, 51, 0])],
    );
    assert.deepEqual(tensor.shape, [1, 3, 2, 2]);
    assert.equal(tensor.datatype, 'FP32');
    // Channel 0 is blue: (0/255 − 0.5) / 0.5 = −1; green 51/255 = 0.2; red (255/255) / 2 = 0.5.
    assert.deepEqual(
      [...(tensor.data as Float32Array)].map((v) => Number(v.toFixed(6))),
      [-1, -1, -1, -1, 0.2, 0.2, 0.2, 0.2, 0.5, 0.5, 0.5, 0.5],
    );
    assert.deepEqual(placements[0], {
      width: 5,
      height: 3,
      scaleX: 2 / 5,
      scaleY: 2 / 3,
      offsetX: 0,
      offsetY: 0,
      region: { left: 0, top: 0, width: 2, height: 2 },
    });
  });

  it('NHWC interleaves channels; UINT8 inputs take pixel values as they are', async () => {
    const plan = compilePreprocess({ layout: 'NHWC' }, input([1, 1, 2, 3], 'UINT8'), 'm');
    const { tensor } = await preprocessImages([solid(2, 1, [1, 2, 3])], plan);
    assert.deepEqual(tensor.shape, [1, 1, 2, 3]);
    assert.deepEqual([...(tensor.data as Uint8Array)], [1, 2, 3, 1, 2, 3]);
  });

  it('fit_pad keeps the aspect ratio and centres the image; the padding is 0', async () => {
    const { tensor, placements } = await run(
      { resize: { mode: 'fit_pad', width: 4, height: 4 }, scale: 1 },
      ['N', 3, 'h', 'w'],
      [solid(8, 4, [7, 7, 7])],
    );
    assert.deepEqual(tensor.shape, [1, 3, 4, 4]);
    assert.deepEqual(
      [...(tensor.data as Float32Array).subarray(0, 16)],
      [0, 0, 0, 0, 7, 7, 7, 7, 7, 7, 7, 7, 0, 0, 0, 0],
    );
    assert.equal(placements[0].offsetY, 1);
    assert.deepEqual(placements[0].region, { left: 0, top: 1, width: 4, height: 2 });
  });

  it('shorter_side_crop scales the shorter side, then cuts out the centre (ImageNet)', async () => {
    const { tensor, placements } = await run(
      { resize: { mode: 'shorter_side_crop', shorter_side: 256 } },
      [1, 3, 224, 224],
      [solid(640, 480, [0, 0, 0])],
    );
    assert.deepEqual(tensor.shape, [1, 3, 224, 224]);
    // 640×480 → 341×256, then the centre 224×224 from (59, 16).
    assert.deepEqual(
      [placements[0].offsetX, placements[0].offsetY, placements[0].scaleX.toFixed(4)],
      [-59, -16, (341 / 640).toFixed(4)],
    );
  });

  it('fixed_height keeps proportions and pads every line to the widest of the batch (and min_width)', async () => {
    const config: PreprocessConfig = { resize: { mode: 'fixed_height', height: 48, min_width: 100, max_width: 400 } };
    const { tensor, placements } = await run(
      config,
      ['N', 3, 48, 'w'],
      [solid(30, 10, [1, 1, 1]), solid(100, 10, [1, 1, 1])],
    );
    assert.deepEqual(tensor.shape, [2, 3, 48, 400]);
    assert.deepEqual(
      placements.map((p) => p.region.width),
      [144, 400],
    );
    const small = await run(config, ['N', 3, 48, 'w'], [solid(10, 10, [1, 1, 1])]);
    assert.deepEqual(small.tensor.shape, [1, 3, 48, 100]);
  });

  it('an image resized ahead (resizedForModel) gives the same tensor as the image itself', async () => {
    // A gradient, so that resizing twice would show in the pixels.
    const image = solid(97, 23, [0, 0, 0]);
    for (let i = 0; i < image.data.length; i++) image.data[i] = (i * 37) % 256;
    const resizes: Array<NonNullable<PreprocessConfig['resize']>> = [
      { mode: 'fixed_height', height: 48, min_width: 64, max_width: 400, multiple_of: 4 },
      { mode: 'fixed_height', height: 48, max_width: 120 },
      { mode: 'fit_pad', width: 64, height: 64 },
      { mode: 'stretch', width: 40, height: 30 },
      { mode: 'limit_side', max_side: 64, multiple_of: 8 },
      { mode: 'shorter_side_crop', shorter_side: 40, width: 32, height: 32 },
    ];
    for (const resize of resizes) {
      const plan = compilePreprocess({ resize }, input(['N', 3, 'h', 'w']), 'm');
      const ahead = await resizedForModel(image, plan);
      const direct = await preprocessImages([image], plan);
      const after = await preprocessImages([ahead], plan);
      assert.deepEqual(after.tensor.shape, direct.tensor.shape, resize.mode);
      assert.deepEqual(after.tensor.data, direct.tensor.data, resize.mode);
    }
  });

  it('limit_side shrinks the longer side to the limit and rounds each side to the multiple', async () => {
    const { tensor, placements } = await run(
      { resize: { mode: 'limit_side', max_side: 960, multiple_of: 32 } },
      ['N', 3, 'h', 'w'],
      [solid(1920, 1000, [0, 0, 0])],
    );
    // 960×500 → 960×512 (500/32 rounds to 16).
    assert.deepEqual(tensor.shape, [1, 3, 512, 960]);
    assert.equal(placements[0].scaleY, 512 / 1000);
  });

  const problems: Array<[string, PreprocessConfig, Array<number | string>, TensorSpec['datatype'], string]> = [
    [
      'dynamic size without one in config',
      {},
      ['N', 3, 'h', 'w'],
      'FP32',
      "preprocess.resize.width is needed: the model's input width is dynamic",
    ],
    [
      'a size that contradicts the model',
      { resize: { mode: 'stretch', width: 200 } },
      [1, 3, 224, 224],
      'FP32',
      "preprocess.resize.width is 200 but the model's input width is fixed at 224",
    ],
    ['four channels', {}, [1, 4, 224, 224], 'FP32', 'input x has 4 channels at dimension 1 (NCHW); expected 3'],
    [
      'normalising a UINT8 input',
      { mean: [1, 1, 1] },
      [1, 3, 2, 2],
      'UINT8',
      'input x is UINT8, which takes pixel values as they are; remove scale, mean and std',
    ],
    [
      'a crop larger than the shorter side',
      { resize: { mode: 'shorter_side_crop', shorter_side: 200 } },
      [1, 3, 224, 224],
      'FP32',
      "preprocess.resize.shorter_side (200) must be at least the crop's 224×224",
    ],
  ];
  for (const [what, config, dims, datatype, message] of problems) {
    it(`refuses ${what}, naming the key`, () => {
      assert.throws(() => compilePreprocess(config, input(dims, datatype), 'm'), {
        message: `model m cannot take images: ${message}`,
      });
    });
  }
});
