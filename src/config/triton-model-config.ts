/**
 * Triton's ModelConfig (triton-inference-server/common, protobuf/model_config.proto) in its JSON form,
 * read into onnx-serve's config.yaml form. A repository load's `config` parameter carries it: what
 * tritonclient sends (`load_model(m, config=json)`) and what `GET /v2/models/{m}/config` answers.
 *
 * Protobuf's JSON mapping is followed where clients rely on it: field names in snake_case or
 * lowerCamelCase, integers as numbers or decimal strings (`{"max_batch_size":"16"}`, as Triton's own
 * model control example sends), enums by name. A field with an onnx-serve equivalent is translated; a
 * field that only tunes Triton's own machinery is accepted while it holds its default (or, for the
 * performance hints under `optimization`, always) and refused otherwise, naming it; anything else is
 * an unknown key. Every message names the field as `config.<path>`.
 */
import { ConfigError, type DynamicBatchingConfig, type ModelConfig } from './model-config.js';
import type { InputConfig } from './input-bounds.js';

/** Triton's platform and backend names for ONNX models. */
const ONNX_PLATFORMS = ['', 'onnxruntime_onnx'];
const ONNX_BACKENDS = ['', 'onnxruntime'];

const DATA_TYPES = new Set(
  [
    'BOOL',
    'UINT8',
    'UINT16',
    'UINT32',
    'UINT64',
    'INT8',
    'INT16',
    'INT32',
    'INT64',
    'FP16',
    'FP32',
    'FP64',
    'STRING',
    'BF16',
  ].map((t) => `TYPE_${t}`),
);
const FORMATS = new Set(['FORMAT_NONE', 'FORMAT_NHWC', 'FORMAT_NCHW']);

/** Top-level fields of ModelConfig that no config.yaml has: their presence says the text is Triton's. */
export const TRITON_ONLY_KEYS = new Set([
  'name',
  'platform',
  'backend',
  'runtime',
  'output',
  'batch_input',
  'batch_output',
  'optimization',
  'sequence_batching',
  'ensemble_scheduling',
  'instance_group',
  'cc_model_filenames',
  'metric_tags',
  'parameters',
  'model_warmup',
  'model_operations',
  'model_transaction_policy',
  'model_repository_agents',
  'response_cache',
]);

/** Performance hints of `optimization` with no meaning here (onnxruntime decides): accepted, not acted on. */
const IGNORED_OPTIMIZATION_KEYS = new Set([
  'priority',
  'input_pinned_memory',
  'output_pinned_memory',
  'gather_kernel_buffer_threshold',
  'eager_batching',
]);

type Json = Record<string, unknown>;

/** lowerCamelCase → snake_case, for protobuf's JSON names (`maxBatchSize` → `max_batch_size`). */
export function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Keys of every nested object in snake_case; maps with free keys (`parameters`, `metric_tags`) stay as they are. */
function normalized(value: unknown, freeKeys = false): unknown {
  if (Array.isArray(value)) return value.map((v) => normalized(v));
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, v]) => {
      const name = freeKeys ? key : snakeCase(key);
      return [name, normalized(v, ['parameters', 'metric_tags', 'cc_model_filenames'].includes(name))];
    }),
  );
}

/** Whether a load's `config` reads as Triton's ModelConfig rather than config.yaml (see loadConfig). */
export function looksLikeTritonConfig(value: Json): boolean {
  const tritonKey = (key: string) => TRITON_ONLY_KEYS.has(snakeCase(key)) || snakeCase(key) !== key;
  // An input entry with a key config.yaml's input has not (data_type, format, ...) is Triton's too.
  const tritonInput = (input: unknown) =>
    typeof input === 'object' &&
    input !== null &&
    Object.keys(input).some((k) => !['name', 'dims', 'max_dims'].includes(k));
  return Object.keys(value).some(tritonKey) || (Array.isArray(value.input) && value.input.some(tritonInput));
}

/** Reads Triton's ModelConfig JSON for model `model` into config.yaml's form; throws a ConfigError naming each bad field. */
export function fromTritonModelConfig(value: Json, model: string): ModelConfig {
  const reader = new Reader();
  const config = reader.read(normalized(value) as Json, model);
  if (reader.problems.length > 0) throw new ConfigError(reader.problems.join('; '));
  return config;
}

class Reader {
  readonly problems: string[] = [];

  read(source: Json, model: string): ModelConfig {
    const config: ModelConfig = {};
    const maxBatchSize = this.#int(source.max_batch_size, 'config.max_batch_size', 0) ?? 0;
    for (const [key, value] of Object.entries(source)) {
      const at = `config.${key}`;
      switch (key) {
        case 'name': {
          const name = this.#string(value, at);
          if (name !== undefined && name !== '' && name !== model) {
            this.problems.push(`${at} is "${name}", but the load is for model "${model}"`);
          }
          break;
        }
        case 'platform':
        case 'backend': {
          const allowed = key === 'platform' ? ONNX_PLATFORMS : ONNX_BACKENDS;
          const name = this.#string(value, at);
          if (name !== undefined && !allowed.includes(name)) {
            this.problems.push(
              `${at} must be ${allowed.filter(Boolean).join(' or ')} (onnx-serve runs ONNX models), got "${name}"`,
            );
          }
          break;
        }
        case 'max_batch_size':
          if (source.max_batch_size !== undefined) config.max_batch_size = maxBatchSize;
          break;
        case 'version_policy':
          this.#versionPolicy(value, at, config);
          break;
        case 'input':
          this.#inputs(value, at, maxBatchSize, config);
          break;
        case 'output':
          this.#outputs(value, at, config);
          break;
        case 'dynamic_batching':
          this.#dynamicBatching(value, at, config);
          break;
        case 'instance_group':
          this.#instanceGroups(value, at, config);
          break;
        case 'default_model_filename': {
          const file = this.#string(value, at);
          if (file !== undefined && file !== '') config.default_model_filename = file;
          break;
        }
        case 'optimization':
          if (this.#object(value, at) !== undefined) {
            for (const [hint, setting] of Object.entries(value as Json)) {
              if (!IGNORED_OPTIMIZATION_KEYS.has(hint)) this.#defaultOnly(setting, `${at}.${hint}`);
            }
          }
          break;
        default:
          if (TRITON_ONLY_KEYS.has(key)) this.#defaultOnly(value, at);
          else {
            this.problems.push(
              `unknown key "${at}" (neither Triton's ModelConfig nor onnx-serve's config.yaml has it; with config.yaml's keys, send config.yaml's form)`,
            );
          }
      }
    }
    return config;
  }

  #versionPolicy(value: unknown, at: string, config: ModelConfig): void {
    const policy = this.#object(value, at);
    if (policy === undefined) return;
    const kinds = Object.keys(policy);
    if (kinds.length !== 1) {
      this.problems.push(`${at} must hold exactly one of latest, all, specific; got ${kinds.join(', ') || 'none'}`);
      return;
    }
    const kind = kinds[0];
    const body = this.#object(policy[kind], `${at}.${kind}`);
    if (body === undefined) return;
    if (kind === 'all') config.version_policy = { all: {} };
    else if (kind === 'latest') {
      const latest = this.#int(body.num_versions ?? 1, `${at}.latest.num_versions`, 1);
      if (latest !== undefined) config.version_policy = { latest };
    } else if (kind === 'specific') {
      const versions = this.#array(body.versions, `${at}.specific.versions`)?.map((v, i) =>
        this.#int(v, `${at}.specific.versions[${i}]`, 1),
      );
      if (versions !== undefined && versions.length > 0 && versions.every((v) => v !== undefined)) {
        config.version_policy = { specific: versions as number[] };
      } else if (versions?.length === 0) this.problems.push(`${at}.specific.versions must name at least one version`);
    } else this.problems.push(`${at} must hold latest, all or specific, got "${kind}"`);
  }

  /** Triton's dims leave out the batch dimension when the model batches; config.yaml's include it. */
  #inputs(value: unknown, at: string, maxBatchSize: number, config: ModelConfig): void {
    const inputs: InputConfig[] = [];
    for (const [index, item] of (this.#array(value, at) ?? []).entries()) {
      const where = `${at}[${index}]`;
      const input = this.#object(item, where);
      if (input === undefined) continue;
      const name = this.#tensorName(input, where);
      let dims: number[] | undefined;
      for (const [key, field] of Object.entries(input)) {
        const path = `${where}.${key}`;
        if (key === 'name') continue;
        else if (key === 'data_type') this.#enum(field, path, DATA_TYPES);
        else if (key === 'format') this.#imageFormat(this.#enum(field, path, FORMATS), name, path, config);
        else if (key === 'dims') dims = this.#dims(field, path);
        else if (
          ['reshape', 'is_shape_tensor', 'allow_ragged_batch', 'optional', 'is_non_linear_format_io'].includes(key)
        ) {
          this.#defaultOnly(field, path);
        } else this.problems.push(`unknown key "${path}"`);
      }
      if (name !== undefined && dims !== undefined) {
        inputs.push({ name, dims: maxBatchSize > 0 ? [-1, ...dims] : dims });
      }
    }
    if (inputs.length > 0) config.input = inputs;
  }

  /** An image input's layout is config.yaml's `preprocess.layout`, as `/config` reports it; one image input at most. */
  #imageFormat(format: string | undefined, input: string | undefined, at: string, config: ModelConfig): void {
    if (format === undefined || format === 'FORMAT_NONE' || input === undefined) return;
    if (config.preprocess !== undefined) {
      this.problems.push(`${at}: a second image input (${input}); onnx-serve preprocesses one image input per model`);
      return;
    }
    config.preprocess = { input, layout: format === 'FORMAT_NHWC' ? 'NHWC' : 'NCHW' };
  }

  #outputs(value: unknown, at: string, config: ModelConfig): void {
    const labels: Record<string, string> = {};
    for (const [index, item] of (this.#array(value, at) ?? []).entries()) {
      const where = `${at}[${index}]`;
      const output = this.#object(item, where);
      if (output === undefined) continue;
      const name = this.#tensorName(output, where);
      for (const [key, field] of Object.entries(output)) {
        const path = `${where}.${key}`;
        if (key === 'name') continue;
        else if (key === 'data_type') this.#enum(field, path, DATA_TYPES);
        else if (key === 'dims') this.#dims(field, path);
        else if (key === 'label_filename') {
          const file = this.#string(field, path);
          if (file !== undefined && file !== '' && name !== undefined) labels[name] = file;
        } else if (['reshape', 'is_shape_tensor', 'is_non_linear_format_io'].includes(key)) {
          this.#defaultOnly(field, path);
        } else this.problems.push(`unknown key "${path}"`);
      }
    }
    if (Object.keys(labels).length > 0) config.label_filename = labels;
  }

  #dynamicBatching(value: unknown, at: string, config: ModelConfig): void {
    const source = this.#object(value, at);
    if (source === undefined) return;
    const batching: DynamicBatchingConfig = {};
    for (const [key, field] of Object.entries(source)) {
      const path = `${at}.${key}`;
      if (key === 'preferred_batch_size') {
        const sizes = this.#array(field, path)?.map((v, i) => this.#int(v, `${path}[${i}]`, 1));
        if (sizes !== undefined && sizes.length > 0 && sizes.every((s) => s !== undefined)) {
          batching.preferred_batch_size = sizes as number[];
        }
      } else if (key === 'max_queue_delay_microseconds') {
        const delay = this.#int(field, path, 0);
        if (delay !== undefined) batching.max_queue_delay_microseconds = delay;
      } else if (key === 'default_queue_policy') this.#queuePolicy(field, path, batching);
      else if (key === 'preserve_ordering') this.#boolean(field, path);
      else if (['priority_levels', 'default_priority_level', 'priority_queue_policy'].includes(key)) {
        this.#defaultOnly(field, path);
      } else this.problems.push(`unknown key "${path}"`);
    }
    config.dynamic_batching = batching;
  }

  #queuePolicy(value: unknown, at: string, batching: DynamicBatchingConfig): void {
    const policy = this.#object(value, at);
    if (policy === undefined) return;
    for (const [key, field] of Object.entries(policy)) {
      const path = `${at}.${key}`;
      if (key === 'timeout_action') {
        if (field !== 'REJECT') {
          this.problems.push(
            `${path} must be "REJECT" (a request past its deadline is refused, never delayed), got ${JSON.stringify(field)}`,
          );
        }
      } else if (key === 'default_timeout_microseconds') {
        const timeout = this.#int(field, path, 0);
        if (timeout !== undefined) batching.default_timeout_microseconds = timeout;
      } else if (key === 'allow_timeout_override') {
        const allow = this.#boolean(field, path);
        if (allow !== undefined) batching.allow_timeout_override = allow;
      } else if (key === 'max_queue_size') {
        // Triton's 0 is "no bound"; onnx-serve always bounds its queue, so 0 keeps the default bound.
        const size = this.#int(field, path, 0);
        if (size !== undefined && size > 0) batching.max_queue_size = size;
      } else this.problems.push(`unknown key "${path}"`);
    }
  }

  /** Instances add up over the groups; KIND_GPU asks for CUDA, KIND_CPU for the CPU. */
  #instanceGroups(value: unknown, at: string, config: ModelConfig): void {
    let instances = 0;
    const kinds = new Set<string>();
    for (const [index, item] of (this.#array(value, at) ?? []).entries()) {
      const where = `${at}[${index}]`;
      const group = this.#object(item, where);
      if (group === undefined) continue;
      for (const [key, field] of Object.entries(group)) {
        const path = `${where}.${key}`;
        if (key === 'name') this.#string(field, path);
        else if (key === 'count') instances += this.#int(field, path, 1) ?? 0;
        else if (key === 'kind') {
          const kind = this.#enum(field, path, new Set(['KIND_AUTO', 'KIND_CPU', 'KIND_GPU']));
          if (kind !== undefined) kinds.add(kind);
        } else if (key === 'gpus') this.#array(field, path);
        else if (['profile', 'passive', 'host_policy', 'secondary_devices', 'rate_limiter'].includes(key)) {
          this.#defaultOnly(field, path);
        } else this.problems.push(`unknown key "${path}"`);
      }
      if (group.count === undefined) instances += 1;
    }
    if (instances > 0) config.instances = instances;
    if (kinds.has('KIND_GPU') && kinds.has('KIND_CPU')) {
      this.problems.push(`${at} mixes KIND_GPU and KIND_CPU; onnx-serve runs all instances of a model on one provider`);
    } else if (kinds.has('KIND_GPU')) config.session = { execution_providers: ['cuda'] };
    else if (kinds.has('KIND_CPU')) config.session = { execution_providers: ['cpu'] };
  }

  #tensorName(tensor: Json, at: string): string | undefined {
    const name = this.#string(tensor.name, `${at}.name`);
    if (name === '') this.problems.push(`${at}.name must not be empty`);
    return name || undefined;
  }

  #dims(value: unknown, at: string): number[] | undefined {
    const dims = this.#array(value, at)?.map((d, i) => this.#int(d, `${at}[${i}]`, -1));
    if (dims === undefined || dims.some((d) => d === undefined)) return undefined;
    const bad = (dims as number[]).findIndex((d) => d === 0);
    if (bad >= 0) {
      this.problems.push(`${at}[${bad}] must be -1 (varies) or a positive integer, got 0`);
      return undefined;
    }
    return dims as number[];
  }

  /** An integer ≥ min, as a number or (protobuf's JSON for 64-bit integers) a decimal string. */
  #int(value: unknown, at: string, min: number): number | undefined {
    if (value === undefined) return undefined;
    const number = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
    if (typeof number !== 'number' || !Number.isSafeInteger(number) || number < min) {
      this.problems.push(
        `${at} must be an integer ≥ ${min} (a number or a decimal string), got ${JSON.stringify(value)}`,
      );
      return undefined;
    }
    return number;
  }

  #string(value: unknown, at: string): string | undefined {
    if (typeof value === 'string') return value;
    this.problems.push(`${at} must be a string, got ${JSON.stringify(value)}`);
    return undefined;
  }

  #boolean(value: unknown, at: string): boolean | undefined {
    if (typeof value === 'boolean') return value;
    this.problems.push(`${at} must be true or false, got ${JSON.stringify(value)}`);
    return undefined;
  }

  #enum(value: unknown, at: string, allowed: Set<string>): string | undefined {
    if (typeof value === 'string' && allowed.has(value)) return value;
    this.problems.push(`${at} must be one of ${[...allowed].join(', ')}, got ${JSON.stringify(value)}`);
    return undefined;
  }

  #array(value: unknown, at: string): unknown[] | undefined {
    if (Array.isArray(value)) return value;
    this.problems.push(`${at} must be a list, got ${JSON.stringify(value)}`);
    return undefined;
  }

  #object(value: unknown, at: string): Json | undefined {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Json;
    this.problems.push(`${at} must be an object, got ${JSON.stringify(value)}`);
    return undefined;
  }

  /** A Triton field onnx-serve has no use for: fine while it says nothing (false, 0, "", empty). */
  #defaultOnly(value: unknown, at: string): void {
    if (!isDefault(value)) {
      this.problems.push(
        `${at} is not supported by onnx-serve (only its default is accepted), got ${JSON.stringify(value)}`,
      );
    }
  }
}

/** Protobuf's defaults: false, 0, "", empty lists, and objects of defaults. */
function isDefault(value: unknown): boolean {
  if (value === false || value === 0 || value === '' || value === '0' || value === null) return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === 'object') return Object.values(value).every(isDefault);
  return false;
}
