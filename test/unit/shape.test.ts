import { describe, test } from 'node:test';

import {
  formatShape,
  validateInputAgainstMetadata,
  validateInputNames,
  validateRequestedOutputNames,
  type TensorSignature,
} from '../../src/protocol/shape.js';
import { assertInvalid } from '../helpers/assert-invalid.js';

const modelInput: TensorSignature = { name: 'x', datatype: 'FP32', shape: [-1, 3, 48, -1] };

describe('validateInputAgainstMetadata', () => {
  const GOOD: TensorSignature[] = [
    { name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192] },
    { name: 'x', datatype: 'FP32', shape: [8, 3, 48, 1] },
    { name: 'x', datatype: 'FP32', shape: [0, 3, 48, 0] },
  ];
  for (const input of GOOD) {
    test(`accepts ${formatShape(input.shape)}`, () =>
      validateInputAgainstMetadata(input, modelInput, 'text-orientation', 0));
  }

  test('a scalar matches a scalar', () => {
    validateInputAgainstMetadata(
      { name: 's', datatype: 'INT64', shape: [] },
      { name: 's', datatype: 'INT64', shape: [] },
      'm',
      0,
    );
  });

  const BAD: [what: string, input: TensorSignature, index: number, message: string][] = [
    [
      'a wrong dimension',
      { name: 'x', datatype: 'FP32', shape: [1, 4, 48, 100] },
      0,
      'inputs[0].shape[1] must be 3 (model text-orientation, input x), got 4',
    ],
    [
      'a wrong last fixed dimension',
      { name: 'x', datatype: 'FP32', shape: [1, 3, 32, 100] },
      2,
      'inputs[2].shape[2] must be 48 (model text-orientation, input x), got 32',
    ],
    [
      'a lower rank',
      { name: 'x', datatype: 'FP32', shape: [3, 48] },
      0,
      'input x of model text-orientation has rank 4 ([-1,3,48,-1]), got shape [3,48] of rank 2',
    ],
    [
      'a higher rank',
      { name: 'x', datatype: 'FP32', shape: [1, 1, 3, 48, 9] },
      0,
      'input x of model text-orientation has rank 4 ([-1,3,48,-1]), got shape [1,1,3,48,9] of rank 5',
    ],
    [
      'a wrong datatype',
      { name: 'x', datatype: 'INT64', shape: [3, 48] },
      0,
      'input x of model text-orientation expects FP32, got INT64',
    ],
  ];
  for (const [what, input, index, message] of BAD) {
    test(`refuses ${what}`, () =>
      assertInvalid(() => validateInputAgainstMetadata(input, modelInput, 'text-orientation', index), message, {
        exact: true,
      }));
  }
});

describe('validateInputNames', () => {
  const inputs = [{ name: 'x' }, { name: 'mask' }];

  test('accepts every input once, in any order', () =>
    validateInputNames([{ name: 'mask' }, { name: 'x' }], inputs, 'm'));

  const BAD: [what: string, requested: { name: string }[], message: string][] = [
    ['an unknown input', [{ name: 'x' }, { name: 'y' }], 'unknown input "y" for model m; its inputs are: x, mask'],
    ['a missing input', [{ name: 'x' }], 'missing input "mask" for model m; its inputs are: x, mask'],
    ['two missing inputs', [], 'missing inputs "x", "mask" for model m; its inputs are: x, mask'],
    ['a repeated input', [{ name: 'x' }, { name: 'x' }, { name: 'mask' }], 'input "x" appears twice in the request'],
  ];
  for (const [what, requested, message] of BAD) {
    test(`refuses ${what}`, () =>
      assertInvalid(() => validateInputNames(requested, inputs, 'm'), message, { exact: true }));
  }
});

describe('validateRequestedOutputNames', () => {
  const outputs = [{ name: 'boxes' }, { name: 'scores' }];

  test('accepts no list, an empty list and a subset', () => {
    validateRequestedOutputNames(undefined, outputs, 'm');
    validateRequestedOutputNames([], outputs, 'm');
    validateRequestedOutputNames([{ name: 'scores' }], outputs, 'm');
  });

  test('refuses an unknown output', () =>
    assertInvalid(
      () => validateRequestedOutputNames([{ name: 'z' }], outputs, 'm'),
      'unknown output "z" for model m; its outputs are: boxes, scores',
      { exact: true },
    ));

  test('refuses an output requested twice', () =>
    assertInvalid(
      () => validateRequestedOutputNames([{ name: 'boxes' }, { name: 'boxes' }], outputs, 'm'),
      'output "boxes" is requested twice',
      { exact: true },
    ));
});
