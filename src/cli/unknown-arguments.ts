/**
 * The command line refuses what it does not know. `serve` is the default command only when the
 * first argument is an option or a path that exists: any other first word is a mistyped or unknown
 * command, and guessing would start a server nobody asked for (`onnx-serve inpsect model.onnx`).
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { closest } from './suggest.js';

/** Why the arguments cannot run, or undefined when commander should parse them. */
export function refuseUnknownCommand(program: Command, args: readonly string[]): string | undefined {
  const first = args[0];
  if (first === undefined || first.startsWith('-')) return undefined;
  const commands = program.commands.flatMap((command) => [command.name(), ...command.aliases()]);
  if (commands.includes(first) || first === 'help' || existsSync(first)) return undefined;
  if (looksLikePath(first)) return missingModelFile(first);
  const suggestion = closest(first, commands);
  return (
    `unknown command '${first}'; ` +
    (suggestion === undefined
      ? `the commands are ${commands.join(', ')} (see onnx-serve --help)`
      : `did you mean '${suggestion}'?`)
  );
}

/** A model path that does not exist, with the closest file in its folder when there is one. */
export function missingModelFile(file: string): string {
  const dir = path.dirname(file);
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    // The folder is missing too: nothing to suggest.
  }
  const suggestion = closest(path.basename(file), entries);
  return (
    `model file '${file}' does not exist; ` +
    (suggestion === undefined
      ? 'give the path of an .onnx file, or --model-repository <dir>'
      : `did you mean '${path.join(dir, suggestion)}'?`)
  );
}

function looksLikePath(word: string): boolean {
  return word.includes('/') || word.includes(path.sep) || word.includes('.');
}
