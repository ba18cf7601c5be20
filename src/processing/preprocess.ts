import sharp from 'sharp';
import type { PreprocessConfig, ResizeConfig } from '../config/processing-config.js';
import { DATATYPES, float16BitsOf, type Datatype, type NamedTensor, type TensorData } from '../protocol/datatypes.js';
import { unavailable } from '../protocol/errors.js';
import type { TensorSpec } from '../runtime/signature.js';
import type { RgbImage } from './image-decode.js';

/**
 * Where one image landed in the batch tensor, so that postprocessing can map tensor coordinates back
 * to the original image: tensorX = offsetX + imageX × scaleX (the same for y).
 */
export interface Placement {
  /** Size of the decoded, upright image. */
  width: number;
  height: number;
  scaleX: number;
  scaleY: number;
  /** Where the image's origin lands in the tensor (negative after a centre crop). */
  offsetX: number;
  offsetY: number;
  /** The part of the tensor the image covers; the rest is padding (zeros). */
  region: { left: number; top: number; width: number; height: number };
}

/** A preprocess config checked against the model's input and resolved to numbers. */
export interface PreprocessPlan {
  model: string;
  input: string;
  datatype: Datatype;
  layout: 'NCHW' | 'NHWC';
  resize:
    | Required<Extract<ResizeConfig, { mode: 'stretch' | 'fit_pad' | 'shorter_side_crop' }>>
    | ResolvedFixedHeight
    | ResolvedLimitSide;
  /** Static tensor height/width of the model's input, where it has one. */
  staticHeight?: number;
  staticWidth?: number;
  /** Most images per tensor: the model's static batch size, if it has one. */
  maxBatch: number;
  /** Tensor channel c is taken from RGB channel source[c]. */
  source: [number, number, number];
  /** Per tensor channel, the encoded tensor value of each 8-bit pixel value (scale, mean, std applied). */
  lut: TensorData[];
}

interface ResolvedFixedHeight {
  mode: 'fixed_height';
  height: number;
  minWidth: number;
  maxWidth: number;
  multipleOf: number;
}
interface ResolvedLimitSide {
  mode: 'limit_side';
  maxSide: number;
  multipleOf: number;
}

const PREPROCESS_DATATYPES: Datatype[] = ['FP32', 'FP16', 'FP64', 'UINT8'];

/** Checks a model's `preprocess` against its input signature; every problem names the key and the model. */
export function compilePreprocess(
  config: PreprocessConfig | undefined,
  inputs: TensorSpec[],
  model: string,
): PreprocessPlan {
  const fail = (message: string) => unavailable(`model ${model} cannot take images: ${message}`);
  const spec =
    config?.input === undefined
      ? inputs.length === 1
        ? inputs[0]
        : undefined
      : inputs.find((input) => input.name === config.input);
  if (spec === undefined) {
    throw fail(
      config?.input === undefined
        ? `it has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); name one in preprocess.input`
        : `preprocess.input ${config.input} is not one of its inputs (${inputs.map((i) => i.name).join(', ')})`,
    );
  }
  if (spec.datatype === null || !PREPROCESS_DATATYPES.includes(spec.datatype)) {
    throw fail(`input ${spec.name} is ${spec.ortType}; images can feed ${PREPROCESS_DATATYPES.join(', ')} inputs`);
  }
  const layout = config?.layout ?? 'NCHW';
  if (spec.dims.length !== 4) {
    throw fail(`input ${spec.name} has ${spec.dims.length} dimensions; an image batch needs 4 (${layout})`);
  }
  const [channelDim, heightDim, widthDim] = layout === 'NCHW' ? [1, 2, 3] : [3, 1, 2];
  const channels = spec.dims[channelDim];
  if (typeof channels === 'number' && channels !== 3) {
    throw fail(`input ${spec.name} has ${channels} channels at dimension ${channelDim} (${layout}); expected 3`);
  }
  const staticOf = (d: number | string) => (typeof d === 'number' ? d : undefined);
  const staticHeight = staticOf(spec.dims[heightDim]);
  const staticWidth = staticOf(spec.dims[widthDim]);
  const normalizes = config?.scale !== undefined || config?.mean !== undefined || config?.std !== undefined;
  if (spec.datatype === 'UINT8' && normalizes) {
    throw fail(`input ${spec.name} is UINT8, which takes pixel values as they are; remove scale, mean and std`);
  }

  const plan: PreprocessPlan = {
    model,
    input: spec.name,
    datatype: spec.datatype,
    layout,
    resize: resolveResize(config?.resize ?? { mode: 'stretch' }, staticHeight, staticWidth, fail),
    maxBatch: staticOf(spec.dims[0]) ?? Infinity,
    source: config?.channel_order === 'bgr' ? [2, 1, 0] : [0, 1, 2],
    lut: lookupTables(spec.datatype, config),
  };
  if (staticHeight !== undefined) plan.staticHeight = staticHeight;
  if (staticWidth !== undefined) plan.staticWidth = staticWidth;
  return plan;
}

function resolveResize(
  resize: ResizeConfig,
  staticHeight: number | undefined,
  staticWidth: number | undefined,
  fail: (message: string) => Error,
): PreprocessPlan['resize'] {
  const size = (key: 'width' | 'height', configured: number | undefined, fixed: number | undefined) => {
    if (configured !== undefined && fixed !== undefined && configured !== fixed) {
      throw fail(`preprocess.resize.${key} is ${configured} but the model's input ${key} is fixed at ${fixed}`);
    }
    const value = configured ?? fixed;
    if (value === undefined) {
      throw fail(`preprocess.resize.${key} is needed: the model's input ${key} is dynamic`);
    }
    return value;
  };
  switch (resize.mode) {
    case 'stretch':
    case 'fit_pad':
      return {
        mode: resize.mode,
        width: size('width', resize.width, staticWidth),
        height: size('height', resize.height, staticHeight),
      };
    case 'shorter_side_crop': {
      const width = size('width', resize.width, staticWidth);
      const height = size('height', resize.height, staticHeight);
      if (resize.shorter_side < Math.max(width, height)) {
        throw fail(
          `preprocess.resize.shorter_side (${resize.shorter_side}) must be at least the crop's ${width}×${height}`,
        );
      }
      return { mode: resize.mode, shorter_side: resize.shorter_side, width, height };
    }
    case 'fixed_height': {
      const maxWidth = resize.max_width ?? staticWidth ?? Infinity;
      const minWidth = resize.min_width ?? staticWidth ?? 1;
      if (minWidth > maxWidth) {
        throw fail(`preprocess.resize.min_width (${minWidth}) is above max_width (${maxWidth})`);
      }
      return {
        mode: 'fixed_height',
        height: size('height', resize.height, staticHeight),
        minWidth,
        maxWidth,
        multipleOf: resize.multiple_of ?? 1,
      };
    }
    case 'limit_side':
      if (staticHeight !== undefined || staticWidth !== undefined) {
        throw fail(`preprocess.resize mode limit_side needs a dynamic input height and width; use stretch or fit_pad`);
      }
      return { mode: 'limit_side', maxSide: resize.max_side ?? 960, multipleOf: resize.multiple_of ?? 32 };
  }
}

/** value = (pixel × scale − mean) / std per tensor channel, computed once for the 256 pixel values. */
function lookupTables(datatype: Datatype, config: PreprocessConfig | undefined): TensorData[] {
  const scale = datatype === 'UINT8' ? 1 : (config?.scale ?? 1 / 255);
  const mean = config?.mean ?? [0, 0, 0];
  const std = config?.std ?? [1, 1, 1];
  return [0, 1, 2].map((c) => {
    const table = DATATYPES[datatype].create(256) as Float32Array | Float64Array | Uint16Array | Uint8Array;
    for (let v = 0; v < 256; v++) {
      const value = (v * scale - mean[c]) / std[c];
      table[v] = datatype === 'FP16' ? float16BitsOf(value) : value;
    }
    return table;
  });
}

/** How one image is resized (and cropped) and where it sits on the tensor canvas. */
interface Layout {
  resizeWidth: number;
  resizeHeight: number;
  crop?: { left: number; top: number; width: number; height: number };
  /** Canvas this image needs; the batch canvas is the largest of them. */
  canvasWidth: number;
  canvasHeight: number;
  placement: Placement;
}

/** The tensor width an image of this size needs on its own: its canvas, or the model's static width. */
export function tensorWidthOf(image: Pick<RgbImage, 'width' | 'height'>, plan: PreprocessPlan): number {
  return plan.staticWidth ?? layoutOf(image, plan.resize).canvasWidth;
}

function layoutOf(image: Pick<RgbImage, 'width' | 'height'>, resize: PreprocessPlan['resize']): Layout {
  const { width, height } = image;
  const placed = (
    rw: number,
    rh: number,
    offsetX = 0,
    offsetY = 0,
    region = { left: 0, top: 0, width: rw, height: rh },
  ) => ({
    width,
    height,
    scaleX: rw / width,
    scaleY: rh / height,
    offsetX,
    offsetY,
    region,
  });
  switch (resize.mode) {
    case 'stretch':
      return fixedCanvas(resize.width, resize.height, resize.width, resize.height, placed(resize.width, resize.height));
    case 'fit_pad': {
      const s = Math.min(resize.width / width, resize.height / height);
      const rw = Math.max(1, Math.round(width * s));
      const rh = Math.max(1, Math.round(height * s));
      const left = Math.floor((resize.width - rw) / 2);
      const top = Math.floor((resize.height - rh) / 2);
      return fixedCanvas(
        resize.width,
        resize.height,
        rw,
        rh,
        placed(rw, rh, left, top, { left, top, width: rw, height: rh }),
      );
    }
    case 'shorter_side_crop': {
      const s = resize.shorter_side / Math.min(width, height);
      const rw = Math.max(resize.width, Math.round(width * s));
      const rh = Math.max(resize.height, Math.round(height * s));
      const crop = {
        left: Math.round((rw - resize.width) / 2),
        top: Math.round((rh - resize.height) / 2),
        width: resize.width,
        height: resize.height,
      };
      return {
        ...fixedCanvas(
          resize.width,
          resize.height,
          rw,
          rh,
          placed(rw, rh, -crop.left, -crop.top, { left: 0, top: 0, width: resize.width, height: resize.height }),
        ),
        crop,
      };
    }
    case 'fixed_height': {
      let rw = Math.ceil((resize.height * width) / height);
      rw = Math.ceil(rw / resize.multipleOf) * resize.multipleOf;
      rw = Math.max(1, Math.min(rw, resize.maxWidth));
      return {
        resizeWidth: rw,
        resizeHeight: resize.height,
        canvasWidth: Math.max(rw, resize.minWidth),
        canvasHeight: resize.height,
        placement: placed(rw, resize.height),
      };
    }
    case 'limit_side': {
      const s = Math.max(width, height) > resize.maxSide ? resize.maxSide / Math.max(width, height) : 1;
      const m = resize.multipleOf;
      const rw = Math.max(m, Math.round((width * s) / m) * m);
      const rh = Math.max(m, Math.round((height * s) / m) * m);
      return { resizeWidth: rw, resizeHeight: rh, canvasWidth: rw, canvasHeight: rh, placement: placed(rw, rh) };
    }
  }
}

function fixedCanvas(canvasWidth: number, canvasHeight: number, rw: number, rh: number, placement: Placement): Layout {
  return { resizeWidth: rw, resizeHeight: rh, canvasWidth, canvasHeight, placement };
}

/** Resized (and cropped) pixels of one image, RGB interleaved. */
async function resizedPixels(image: RgbImage, layout: Layout): Promise<Buffer> {
  if (layout.resizeWidth === image.width && layout.resizeHeight === image.height && layout.crop === undefined) {
    return image.data;
  }
  let pipeline = sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).resize(
    layout.resizeWidth,
    layout.resizeHeight,
    { fit: 'fill' },
  );
  if (layout.crop !== undefined) pipeline = pipeline.extract(layout.crop);
  return pipeline.raw().toBuffer();
}

/**
 * The image resized as preprocessImages would resize it, without its canvas or encoding:
 * preprocessImages then takes it as it is. Lets a pipeline resize its crops while the model's
 * threads are idle, instead of in each request while they compute. shorter_side_crop's images come
 * back untouched (resized and cropped once, they would be resized again).
 */
export async function resizedForModel(image: RgbImage, plan: PreprocessPlan): Promise<RgbImage> {
  if (plan.resize.mode === 'shorter_side_crop') return image;
  const layout = layoutOf(image, plan.resize);
  const data = await resizedPixels(image, layout);
  return { data, width: layout.resizeWidth, height: layout.resizeHeight };
}

/**
 * One channel of one image into the tensor, each byte through the channel's lookup table: a plain
 * loop with everything in arguments, which V8 compiles tightly (the three channels interleaved in one
 * closure's loop took ~30 % longer in the OCR pipeline's CPU profile; most of what is left is the
 * first touch of the new tensor's pages).
 */
function encodeChannel(
  data: TensorData,
  first: number,
  rowStride: number,
  pixelStride: number,
  source: Buffer,
  sourceOffset: number,
  sourceRowStride: number,
  region: { width: number; height: number },
  lut: Float32Array,
): void {
  const target = data as Float32Array;
  for (let y = 0; y < region.height; y++) {
    let from = y * sourceRowStride + sourceOffset;
    const end = from + region.width * 3;
    for (let to = first + y * rowStride; from < end; from += 3, to += pixelStride) target[to] = lut[source[from]];
  }
}

/**
 * Turns images into one batch tensor: each resized by the plan, encoded through the lookup tables and
 * written at its place on a common canvas (the largest any image needs, or the model's static size);
 * what no image covers stays 0, which is how PaddleOCR pads text lines.
 */
export async function preprocessImages(
  images: RgbImage[],
  plan: PreprocessPlan,
): Promise<{ tensor: NamedTensor; placements: Placement[] }> {
  const layouts = images.map((image) => layoutOf(image, plan.resize));
  const canvasWidth = plan.staticWidth ?? Math.max(...layouts.map((l) => l.canvasWidth));
  const canvasHeight = plan.staticHeight ?? Math.max(...layouts.map((l) => l.canvasHeight));
  const pixels = await Promise.all(images.map((image, i) => resizedPixels(image, layouts[i])));
  const plane = canvasWidth * canvasHeight;
  const data = DATATYPES[plan.datatype].create(images.length * 3 * plane) as Float32Array;
  const nchw = plan.layout === 'NCHW';
  // Strides of channel and pixel in the tensor: NCHW keeps channels in planes, NHWC interleaves them.
  const channelStride = nchw ? plane : 1;
  const pixelStride = nchw ? 1 : 3;
  layouts.forEach((layout, n) => {
    const { region } = layout.placement;
    const sourceWidth = layout.crop?.width ?? layout.resizeWidth;
    for (let c = 0; c < 3; c++) {
      const first = n * 3 * plane + c * channelStride + (region.top * canvasWidth + region.left) * pixelStride;
      encodeChannel(
        data,
        first,
        canvasWidth * pixelStride,
        pixelStride,
        pixels[n],
        plan.source[c],
        sourceWidth * 3,
        region,
        plan.lut[c] as Float32Array,
      );
    }
  });
  const shape = nchw ? [images.length, 3, canvasHeight, canvasWidth] : [images.length, canvasHeight, canvasWidth, 3];
  return {
    tensor: { name: plan.input, datatype: plan.datatype, shape, data },
    placements: layouts.map((l) => l.placement),
  };
}
