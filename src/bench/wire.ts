/**
 * The client side of one inference over HTTP, in either encoding: the body and headers to send, and
 * the decoded answer. Used by `onnx-serve bench` and by the tests, through the protocol's own codecs.
 */
import { decodeBinaryResponse, encodeBinaryRequest, HEADER_LENGTH_HEADER } from '../protocol/binary-extension.js';
import type { DecodedInferenceResponse, InferenceRequest } from '../protocol/json-codec.js';
import { encodeJsonRequest } from '../protocol/json-encode.js';

export type WireEncoding = 'binary' | 'json';

export interface EncodedRequest {
  body: Buffer;
  headers: Record<string, string>;
}

/** Binary: every input as a blob and every output asked back as one. JSON: plain JSON both ways. */
export function encodeRequest(request: InferenceRequest, encoding: WireEncoding): EncodedRequest {
  if (encoding === 'json') {
    return { body: Buffer.from(encodeJsonRequest(request)), headers: { 'content-type': 'application/json' } };
  }
  const encoded = encodeBinaryRequest({
    ...request,
    parameters: { ...request.parameters, binary_data_output: true },
  });
  return {
    body: Buffer.concat(encoded.chunks, encoded.byteLength),
    headers: {
      'content-type': 'application/octet-stream',
      [HEADER_LENGTH_HEADER]: String(encoded.headerLength),
    },
  };
}

/** Decodes a 200 answer in whichever encoding the server chose (it follows the request). */
export function decodeResponse(body: Uint8Array, headers: Headers): DecodedInferenceResponse {
  const headerLength = headers.get(HEADER_LENGTH_HEADER);
  return decodeBinaryResponse(body, headerLength === null ? undefined : Number(headerLength));
}

export interface InferAnswer {
  status: number;
  headers: Headers;
  /** The decoded response on 200. */
  response?: DecodedInferenceResponse;
  /** The error message on any other status. */
  error?: string;
}

/** POSTs an encoded request to an infer URL and decodes what comes back. */
export async function postInference(url: string, request: EncodedRequest): Promise<InferAnswer> {
  // Uncompressed answers: the bench measures inference, and fetch would ask gzip by default.
  const reply = await fetch(url, {
    method: 'POST',
    headers: { 'accept-encoding': 'identity', ...request.headers },
    body: request.body,
  });
  const body = new Uint8Array(await reply.arrayBuffer());
  if (reply.status !== 200) {
    const text = Buffer.from(body).toString('utf8');
    let error = text;
    try {
      error = (JSON.parse(text) as { error: string }).error;
    } catch {
      // Not JSON: keep the text as it came.
    }
    return { status: reply.status, headers: reply.headers, error };
  }
  return { status: 200, headers: reply.headers, response: decodeResponse(body, reply.headers) };
}
