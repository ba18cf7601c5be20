import type { NamedTensor } from '../protocol/datatypes.js';
import { checkBytesElement } from '../protocol/bytes-elements.js';
import { payloadTooLarge } from '../protocol/errors.js';
import type { InferenceRequestHeader } from '../protocol/json-codec.js';

/** Bounds on what one request may ask of the server, beyond the body size. */
export interface RequestLimits {
  /** Bytes of request line plus headers (Node's maxHeaderSize). */
  maxHeaderSize: number;
  /** Input tensors in one request. */
  maxTensors: number;
  /** Elements in one tensor (the product of its shape). */
  maxTensorElements: number;
  /** UTF-8 bytes in one BYTES element. */
  maxBytesElementSize: number;
}

export const DEFAULT_REQUEST_LIMITS: RequestLimits = {
  maxHeaderSize: 16 * 1024,
  maxTensors: 64,
  maxTensorElements: 64 * 1024 * 1024,
  maxBytesElementSize: 4 * 1024 * 1024,
};

/**
 * Checked on the request header, before JSON data or gRPC contents are decoded. Binary-extension and
 * raw tensors are views into the body, which the body limit already bounds, so they are checked
 * after the body is split into them but before any tensor is built from it.
 */
export function checkHeaderLimits(header: InferenceRequestHeader, limits: RequestLimits): void {
  if (header.inputs.length > limits.maxTensors) {
    throw payloadTooLarge(
      `the request has ${header.inputs.length} inputs; the limit is ${limits.maxTensors} (--max-tensors)`,
    );
  }
  header.inputs.forEach((input, index) => {
    const elements = input.shape.reduce((product, dim) => product * Number(dim), 1);
    if (elements > limits.maxTensorElements) {
      throw payloadTooLarge(
        `inputs[${index}] (${input.name}) has shape [${input.shape.join(', ')}], ${elements} elements; ` +
          `the limit is ${limits.maxTensorElements} per tensor (--max-tensor-elements)`,
      );
    }
  });
}

/**
 * Checked once BYTES tensors are decoded, on every transport: their elements are variable-sized, and
 * each must reach the session exactly as it came (no NUL byte, nothing without a UTF-8 form).
 */
export function checkBytesElements(inputs: NamedTensor[], limits: RequestLimits): NamedTensor[] {
  inputs.forEach((tensor, index) => {
    if (tensor.datatype !== 'BYTES' || !Array.isArray(tensor.data)) return;
    (tensor.data as string[]).forEach((element, position) => {
      checkBytesElement(element, `inputs[${index}] (${tensor.name})`, position);
      const size = Buffer.byteLength(element, 'utf8');
      if (size > limits.maxBytesElementSize) {
        throw payloadTooLarge(
          `inputs[${index}] (${tensor.name}) element ${position} is ${size} bytes; ` +
            `the limit is ${limits.maxBytesElementSize} per BYTES element (--max-bytes-element-size)`,
        );
      }
    });
  });
  return inputs;
}
