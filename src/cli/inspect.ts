/**
 * `onnx-serve inspect <model...>`: what a model file asks for and returns, read from the file
 * itself without starting an onnxruntime session.
 */
import type { Command } from 'commander';

import { readModelInfo, type Dim, type ModelInfo, type ValueInfo } from '../onnx/model-file.js';

const TOP_OPERATORS = 15;

export function registerInspectCommand(program: Command): void {
  program
    .command('inspect')
    .description('describe ONNX model files: inputs, outputs, opsets, parameters and operators')
    .argument('<model...>', 'paths of .onnx files')
    .option('--json', 'print JSON: one object for one file, an array for several')
    .action(async (paths: string[], options: { json?: boolean }) => {
      // One file at a time because each is read whole into memory; a file that fails is reported
      // on stderr and fails the command, while the others are still described.
      const infos: ModelInfo[] = [];
      for (const path of paths) {
        try {
          infos.push(await readModelInfo(path));
        } catch (error) {
          process.stderr.write(`error: ${(error as Error).message.replace(/\s*\n\s*/g, ' ')}\n`);
          process.exitCode = 1;
        }
      }
      if (infos.length === 0) return;
      if (options.json) console.log(JSON.stringify(paths.length === 1 ? infos[0] : infos, null, 2));
      else console.log(infos.map(formatModelInfo).join('\n\n'));
    });
}

export function formatModelInfo(info: ModelInfo): string {
  const header: [string, string][] = [
    ['File', info.path],
    ['Size', `${(info.fileSize / 1e6).toFixed(1)} MB (${info.fileSize} bytes)`],
    ['IR version', String(info.irVersion)],
    ['Producer', [info.producerName, info.producerVersion].filter(Boolean).join(' ') || '(none)'],
    ['Opsets', info.opsetImports.map((opset) => `${opset.domain} ${opset.version}`).join(', ') || '(none)'],
  ];
  if (info.domain) header.push(['Domain', info.domain]);
  if (info.modelVersion) header.push(['Model version', String(info.modelVersion)]);
  for (const [key, value] of Object.entries(info.metadataProps)) header.push([`Metadata ${key}`, value]);
  if (info.docString) header.push(['Doc', info.docString.split('\n')[0]]);
  const parameters = `${info.parameterCount.toLocaleString('en-US')} (${humanCount(info.parameterCount)})`;
  header.push(
    ['Parameters', `${parameters}, ${(info.parameterBytes / 1e6).toFixed(1)} MB`],
    ['Nodes', String(info.nodeCount)],
  );
  if (info.externalData) header.push(['External data', 'yes (weights are stored in files next to the model)']);

  const shown = info.operatorHistogram.slice(0, TOP_OPERATORS);
  const hidden = info.operatorHistogram.length - shown.length;
  return [
    ...alignColumns(header.map(([label, value]) => [`${label}:`, value])),
    '',
    'Inputs:',
    ...valueTable(info.inputs),
    '',
    'Outputs:',
    ...valueTable(info.outputs),
    '',
    `Operators (${info.operatorHistogram.length} types):`,
    ...operatorLines(shown),
    ...(hidden > 0 ? [`  ... and ${hidden} more`] : []),
  ].join('\n');
}

function valueTable(values: ValueInfo[]): string[] {
  if (values.length === 0) return ['  (none)'];
  const rows = values.map((value) => [
    value.name,
    value.datatype ? `${value.elemType} / ${value.datatype}` : value.elemType,
    formatShape(value.shape),
  ]);
  return alignColumns([['NAME', 'TYPE', 'SHAPE'], ...rows]).map((line) => `  ${line}`);
}

function operatorLines(histogram: ModelInfo['operatorHistogram']): string[] {
  const opWidth = Math.max(0, ...histogram.map(({ op }) => op.length));
  const countWidth = Math.max(0, ...histogram.map(({ count }) => String(count).length));
  return histogram.map(({ op, count }) => `  ${op.padEnd(opWidth)}  ${String(count).padStart(countWidth)}`);
}

function formatShape(shape: Dim[] | null): string {
  if (shape === null) return 'unknown rank';
  return `[${shape.map((dim) => (dim === null ? '?' : String(dim))).join(', ')}]`;
}

/** 10823 → '10.8 K', 2690312 → '2.7 M'. */
function humanCount(count: number): string {
  for (const [scale, suffix] of [
    [1e9, 'B'],
    [1e6, 'M'],
    [1e3, 'K'],
  ] as const) {
    if (count >= scale) return `${(count / scale).toFixed(1)} ${suffix}`;
  }
  return String(count);
}

/** Pads every column but the last to its widest cell, two spaces apart. */
function alignColumns(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd(),
  );
}
