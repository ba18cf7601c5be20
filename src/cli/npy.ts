/**
 * A reader for NumPy's .npy files (format versions 1–3, as numpy.save writes them): magic
 * "\x93NUMPY", version, header length, then a Python dict literal with descr, fortran_order and
 * shape, then the raw C-order data. See numpy.lib.format.
 */

import { DATATYPES, elementCount, type Datatype, type Tensor } from '../protocol/datatypes.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** NumPy type codes (without byte order) → protocol datatypes. */
const DATATYPE_OF_CODE: Readonly<Record<string, Datatype>> = {
  b1: 'BOOL',
  u1: 'UINT8',
  u2: 'UINT16',
  u4: 'UINT32',
  u8: 'UINT64',
  i1: 'INT8',
  i2: 'INT16',
  i4: 'INT32',
  i8: 'INT64',
  f2: 'FP16',
  f4: 'FP32',
  f8: 'FP64',
};

/** Parses a .npy file; `what` names it in errors. Throws an Error saying what is wrong and what is expected. */
export function parseNpy(bytes: Uint8Array, what: string): Tensor {
  if (bytes.length < 10 || !MAGIC.every((byte, index) => bytes[index] === byte)) {
    throw new Error(`${what} is not a .npy file: it does not start with \\x93NUMPY`);
  }
  const major = bytes[6];
  if (major < 1 || major > 3)
    throw new Error(`${what}: .npy format version ${major} is not supported (expected 1, 2 or 3)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerStart = major === 1 ? 10 : 12;
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) throw new Error(`${what}: the header is cut short (${bytes.length} bytes in all)`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));

  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortranOrder = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortranOrder === undefined || shapeText === undefined) {
    throw new Error(`${what}: the header lacks descr, fortran_order or shape: ${header.trim()}`);
  }
  if (fortranOrder === 'True') {
    throw new Error(`${what} is in Fortran order; save it in C order (numpy.ascontiguousarray) first`);
  }
  const [, order, code] = /^([<>|=]?)(.*)$/.exec(descr)!;
  const datatype = DATATYPE_OF_CODE[code];
  if (datatype === undefined) {
    throw new Error(
      `${what}: dtype ${descr} is not supported; expected one of ${Object.keys(DATATYPE_OF_CODE).join(', ')} (strings: use a .json input)`,
    );
  }
  const byteSize = DATATYPES[datatype].byteSize;
  if (order === '>' && byteSize > 1) {
    throw new Error(`${what} is big-endian (${descr}); save it little-endian (array.astype('<${code}'))`);
  }
  const shape = shapeText
    .split(',')
    .map((dim) => dim.trim())
    .filter((dim) => dim.length > 0)
    .map(Number);
  const count = elementCount(shape);
  const size = count * byteSize;
  if (bytes.length - dataStart !== size) {
    throw new Error(
      `${what}: shape (${shape.join(', ')}) of ${descr} needs ${size} data bytes, the file has ${bytes.length - dataStart}`,
    );
  }
  const data = DATATYPES[datatype].create(count) as Exclude<Tensor['data'], string[]>;
  // A copy: the data's offset in the file need not be aligned for the element size.
  new Uint8Array(data.buffer).set(bytes.subarray(dataStart));
  return { datatype, shape, data };
}
