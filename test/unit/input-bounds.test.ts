import assert from 'node:assert/strict';
import { it } from 'node:test';
import { resolveInputBounds } from '../../src/config/input-bounds.js';
import { validateModelConfig } from '../../src/config/model-config.js';
import { validateInputBounds } from '../../src/protocol/shape.js';
import type { TensorSpec } from '../../src/runtime/signature.js';
import { assertInvalid } from '../helpers/assert-invalid.js';

const RECOGNIZER: TensorSpec[] = [{ name: 'x', datatype: 'FP32', ortType: 'float32', dims: ['n', 3, 48, 'w'] }];

it('config.yaml input: dims and max_dims are checked against the model when it loads', () => {
  const bounds = resolveInputBounds([{ name: 'x', dims: [-1, 3, 48, -1], max_dims: [16, 3, 48, 3200] }], RECOGNIZER);
  assert.deepEqual(bounds.get('x'), {
    source: 'config.yaml input[0]',
    dims: [-1, 3, 48, -1],
    maxDims: [16, 3, 48, 3200],
  });
  const cases: Array<[string, Parameters<typeof resolveInputBounds>[0], string]> = [
    [
      'unknown input',
      [{ name: 'y', dims: [-1, 3, 48, -1] }],
      'config.yaml input[0]: the model has no input "y"; its inputs are x',
    ],
    [
      'wrong rank',
      [{ name: 'x', dims: [-1, 3, 48] }],
      "config.yaml input[0]: dims and max_dims need 4 entries (the batch dimension included), like the model's [n, 3, 48, w]",
    ],
    [
      'against a fixed dimension',
      [{ name: 'x', dims: [-1, 3, 32, -1] }],
      'config.yaml input[0]: dims[2] is 32, but the model fixes that dimension at 48',
    ],
    [
      'a bound on a fixed dimension',
      [{ name: 'x', dims: [-1, 3, 48, 320], max_dims: [-1, 3, 48, 640] }],
      'config.yaml input[0]: max_dims[3] is 640, but dims[3] fixes that dimension at 320',
    ],
    [
      'listed twice',
      [
        { name: 'x', dims: [-1, 3, 48, -1] },
        { name: 'x', dims: [-1, 3, 48, -1] },
      ],
      'config.yaml input[1]: input x is listed twice',
    ],
  ];
  for (const [what, config, message] of cases)
    assert.throws(() => resolveInputBounds(config, RECOGNIZER), { message }, what);
  assert.throws(() => validateModelConfig({ input: [{ name: 'x', dims: [0, 3] }] }, 'config.yaml'), {
    message: 'config.yaml: input.0.dims.0 must be -1 (varies) or a positive integer',
  });
});

it('a request over a bound, or off a fixed dimension, is a 400 naming the dimension and the bound', () => {
  const bound = { source: 'config.yaml input[0]', dims: [-1, 3, 48, -1], maxDims: [16, 3, 48, 3200] };
  const input = (shape: number[]) => ({ name: 'x', datatype: 'FP32' as const, shape });
  validateInputBounds(input([16, 3, 48, 3200]), bound, 'rec', 0);
  assertInvalid(
    () => validateInputBounds(input([1, 3, 48, 3201]), bound, 'rec', 0),
    'inputs[0].shape[3] is 3201, above the bound of 3200 for that dimension (model rec, input x, config.yaml input[0].max_dims[3]); send a smaller tensor or split it',
    { exact: true },
  );
  assertInvalid(
    () => validateInputBounds(input([17, 3, 48, 8]), bound, 'rec', 0),
    'inputs[0].shape[0] is 17, above the bound of 16',
  );
});
