/**
 * BYTES elements exactly as they came, or a clear refusal. onnxruntime-node carries a BYTES
 * (string) tensor as JavaScript strings and hands them to the session as C strings: an element
 * holding a NUL byte is cut at it, bytes that are not UTF-8 would turn into U+FFFD, and a lone
 * UTF-16 surrogate (possible in JSON escapes and in-process strings) has no UTF-8 form at all. Rather
 * than let any of them change silently, the request is refused naming the input and the element.
 * Browser-safe (the client imports the binary codec): TextDecoder, no Buffer.
 */
import { invalidArgument } from './errors.js';

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const WHY = 'onnxruntime-node carries BYTES elements as text, so only UTF-8 without NUL bytes passes unchanged';

/** One element's bytes as text; INVALID_ARGUMENT naming it when they are not UTF-8. */
export function decodeBytesElement(bytes: Uint8Array, label: string, index: number): string {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    throw invalidArgument(`${label} BYTES element ${index} is not valid UTF-8; ${WHY}`);
  }
}

/** INVALID_ARGUMENT naming the element when a string holds a NUL or cannot be written as UTF-8. */
export function checkBytesElement(text: string, label: string, index: number): void {
  const nul = text.indexOf('\0');
  if (nul !== -1) {
    throw invalidArgument(`${label} BYTES element ${index} holds a NUL byte at character ${nul}; ${WHY}`);
  }
  if (LONE_SURROGATE.test(text)) {
    throw invalidArgument(
      `${label} BYTES element ${index} holds a lone UTF-16 surrogate, which has no UTF-8 form; ${WHY}`,
    );
  }
}
