/**
 * JSON text to values, for inference requests and responses and the other JSON bodies: exact 64-bit
 * integers (literals beyond ±(2^53−1) become bigint), no prototype pollution, and errors that say
 * where the text is malformed. Pure; runs in browsers too (the client parses responses with it).
 */
import { invalidArgument } from './errors.js';

/** UINT64's maximum has 20 digits; longer literals can't be exact 64-bit integers, and BigInt() of a megabyte of digits is slow. */
const MAX_BIGINT_LITERAL_LENGTH = 21;

class JsonSyntaxError extends Error {}

/**
 * Parses JSON text, keeping integer literals beyond ±(2^53−1) exact as bigint. Malformed text throws
 * invalidArgument `malformed JSON in <what>: <problem> at position <n>` (a UTF-16 offset).
 */
export function parseJsonText(text: string, what: string): unknown {
  return parseJson(text, what, false);
}

/**
 * parseJsonText, where `tensorDocument` says the text is an inference request or response: the
 * `data` of a tensor object whose datatype is FP16/FP32/FP64 is then left out of the scan for numbers
 * beyond 2^53. Such elements end as floats either way (Number of the exact bigint is what JSON.parse
 * gives), and that data is most of a JSON request: the decode loop reads it once instead of twice.
 */
export function parseJson(text: string, what: string, tensorDocument: boolean): unknown {
  if (text.length === 0) throw invalidArgument(`malformed JSON in ${what}: it is empty`);
  try {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      // Node 20's messages often lack the position; the exact parser finds it.
      parseJsonExactly(text);
      throw new JsonSyntaxError(error instanceof Error ? error.message : String(error));
    }
    // Node 20's JSON.parse cannot show a reviver the source text, so a body that may have lost digits
    // is parsed again, exactly. (Scanning the parsed values is several times cheaper than a regular
    // expression over the text, which must also tell integer literals from fraction digits.)
    return holdsUnsafeNumber(value, tensorDocument) ? parseJsonExactly(text) : value;
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw invalidArgument(`malformed JSON in ${what}: ${error.message}`);
    throw error;
  }
}

/**
 * Whether a parsed value holds a number beyond ±(2^53−1). Every integer literal that JSON.parse
 * rounds lands there (so do huge floats such as 1e300, which merely cost an exact re-parse).
 */
function holdsUnsafeNumber(root: unknown, skipFloatData: boolean): boolean {
  if (typeof root !== 'object' || root === null) return isUnsafeNumber(root);
  const pending: object[] = [root];
  while (pending.length > 0) {
    const container = pending.pop()!;
    let elements: unknown[];
    if (Array.isArray(container)) elements = container;
    else if (skipFloatData && holdsFloatData(container as Record<string, unknown>)) {
      elements = Object.entries(container).flatMap(([key, value]) => (key === 'data' ? [] : [value]));
    } else elements = Object.values(container);
    if (elementsHoldUnsafeNumber(elements, pending)) return true;
  }
  return false;
}

const FLOAT_DATATYPE_NAMES = new Set<unknown>(['FP16', 'FP32', 'FP64']);

/** A tensor object (request input, response output) whose own `data` will be decoded as floats. */
function holdsFloatData(object: Record<string, unknown>): boolean {
  return (
    Object.prototype.hasOwnProperty.call(object, 'datatype') &&
    FLOAT_DATATYPE_NAMES.has(object.datatype) &&
    Object.prototype.hasOwnProperty.call(object, 'data')
  );
}

function isUnsafeNumber(value: unknown): boolean {
  return typeof value === 'number' && (value > Number.MAX_SAFE_INTEGER || value < -Number.MAX_SAFE_INTEGER);
}

/** The hot loop over data arrays of millions of numbers: checks them in place, queues containers. */
function elementsHoldUnsafeNumber(elements: unknown[], pending: object[]): boolean {
  for (let index = 0; index < elements.length; index++) {
    const element = elements[index];
    if (typeof element === 'number') {
      if (element > Number.MAX_SAFE_INTEGER || element < -Number.MAX_SAFE_INTEGER) return true;
    } else if (typeof element === 'object' && element !== null) {
      pending.push(element);
    }
  }
  return false;
}

/**
 * A validating JSON parser that returns integer literals beyond 2^53 as bigint. Iterative (an explicit
 * stack of open containers), so deep nesting cannot overflow the call stack. Objects get own
 * properties only, `__proto__` included, as JSON.parse does.
 */
function parseJsonExactly(text: string): unknown {
  const length = text.length;
  let position = 0;
  const containers: (unknown[] | Record<string, unknown>)[] = [];
  const keys: string[] = []; // the pending key of each open object ('' for arrays)

  const fail = (): never => {
    if (position >= length) throw new JsonSyntaxError(`Unexpected end of JSON input at position ${position}`);
    throw new JsonSyntaxError(`Unexpected token ${showCharacter(text[position])} at position ${position}`);
  };
  const skipWhitespace = (): void => {
    while (position < length) {
      const code = text.charCodeAt(position);
      if (code !== 0x20 && code !== 0x0a && code !== 0x0d && code !== 0x09) return;
      position++;
    }
  };
  const readString = (): string => {
    const start = position;
    position++; // opening quote
    let hasEscapes = false;
    for (;;) {
      if (position >= length) throw new JsonSyntaxError(`Unterminated string starting at position ${start}`);
      const code = text.charCodeAt(position);
      if (code === 0x22) break;
      if (code < 0x20) throw new JsonSyntaxError(`Bad control character in string at position ${position}`);
      if (code !== 0x5c) {
        position++;
        continue;
      }
      hasEscapes = true;
      const escaped = text.charCodeAt(position + 1);
      if (escaped === 0x75) {
        for (let digit = 2; digit < 6; digit++) {
          if (!isHexDigit(text.charCodeAt(position + digit))) {
            throw new JsonSyntaxError(`Bad Unicode escape in string at position ${position}`);
          }
        }
        position += 6;
      } else if (SIMPLE_ESCAPES.has(escaped)) {
        position += 2;
      } else if (position + 1 >= length) {
        throw new JsonSyntaxError(`Unterminated string starting at position ${start}`);
      } else {
        throw new JsonSyntaxError(`Bad escaped character in string at position ${position + 1}`);
      }
    }
    position++; // closing quote
    // The escapes were checked above, so JSON.parse of the literal cannot fail and decodes them exactly.
    return hasEscapes ? (JSON.parse(text.slice(start, position)) as string) : text.slice(start + 1, position - 1);
  };
  const skipDigits = (): void => {
    while (isDigit(text.charCodeAt(position))) position++;
  };
  const readNumber = (): number | bigint => {
    const start = position;
    if (text.charCodeAt(position) === 0x2d) position++;
    const first = text.charCodeAt(position);
    if (first === 0x30) position++;
    else if (first >= 0x31 && first <= 0x39) skipDigits();
    else fail();
    let isInteger = true;
    if (text.charCodeAt(position) === 0x2e) {
      isInteger = false;
      position++;
      if (!isDigit(text.charCodeAt(position))) fail();
      skipDigits();
    }
    const exponent = text.charCodeAt(position);
    if (exponent === 0x65 || exponent === 0x45) {
      isInteger = false;
      position++;
      const sign = text.charCodeAt(position);
      if (sign === 0x2b || sign === 0x2d) position++;
      if (!isDigit(text.charCodeAt(position))) fail();
      skipDigits();
    }
    const literal = text.slice(start, position);
    const value = Number(literal);
    if (isInteger && !Number.isSafeInteger(value) && literal.length <= MAX_BIGINT_LITERAL_LENGTH)
      return BigInt(literal);
    return value;
  };
  const readLiteral = <T>(word: string, value: T): T => {
    for (let index = 0; index < word.length; index++, position++) {
      if (text.charCodeAt(position) !== word.charCodeAt(index)) fail();
    }
    return value;
  };
  const readKey = (): string => {
    if (text.charCodeAt(position) !== 0x22) fail();
    const key = readString();
    skipWhitespace();
    if (text.charCodeAt(position) !== 0x3a) fail();
    position++;
    skipWhitespace();
    return key;
  };

  skipWhitespace();
  readValue: for (;;) {
    let value: unknown;
    const code = text.charCodeAt(position);
    if (code === 0x7b) {
      position++;
      skipWhitespace();
      const object: Record<string, unknown> = {};
      if (text.charCodeAt(position) === 0x7d) {
        position++;
        value = object;
      } else {
        containers.push(object);
        keys.push(readKey());
        continue;
      }
    } else if (code === 0x5b) {
      position++;
      skipWhitespace();
      const array: unknown[] = [];
      if (text.charCodeAt(position) === 0x5d) {
        position++;
        value = array;
      } else {
        containers.push(array);
        keys.push('');
        continue;
      }
    } else if (code === 0x22) value = readString();
    else if (code === 0x2d || isDigit(code)) value = readNumber();
    else if (code === 0x74) value = readLiteral('true', true);
    else if (code === 0x66) value = readLiteral('false', false);
    else if (code === 0x6e) value = readLiteral('null', null);
    else fail();

    // Store the value in its container, then close every container that ends right after it.
    for (;;) {
      if (containers.length === 0) {
        skipWhitespace();
        if (position < length) fail();
        return value;
      }
      const container = containers[containers.length - 1];
      const isArray = Array.isArray(container);
      if (isArray) container.push(value);
      else setOwnProperty(container, keys[keys.length - 1], value);
      skipWhitespace();
      const next = text.charCodeAt(position);
      if (next === 0x2c) {
        position++;
        skipWhitespace();
        if (!isArray) keys[keys.length - 1] = readKey();
        continue readValue;
      }
      if (next !== (isArray ? 0x5d : 0x7d)) fail();
      position++;
      containers.pop();
      keys.pop();
      value = container;
    }
  }
}

const SIMPLE_ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]); // " \ / b f n r t

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

function isHexDigit(code: number): boolean {
  return isDigit(code) || (code >= 0x41 && code <= 0x46) || (code >= 0x61 && code <= 0x66);
}

function showCharacter(character: string): string {
  return /^[\x21-\x7e]$/.test(character)
    ? character
    : `U+${character.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Plain assignment of `__proto__` would replace the prototype; JSON semantics make it an own property. */
function setOwnProperty(object: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    object[key] = value;
  }
}

// TextDecoder rather than Buffer: the client (onnx-serve/client) runs in browsers and imports this module.
const UTF8_DECODER = new TextDecoder('utf-8', { ignoreBOM: true });

/** The text of a body given as bytes (UTF-8) or as a string. */
export function textOf(body: Uint8Array | string): string {
  return typeof body === 'string' ? body : UTF8_DECODER.decode(body);
}
