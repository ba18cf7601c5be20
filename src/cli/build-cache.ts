/**
 * `onnx-serve build-cache`: builds the int8 variants and simplified graphs that a repository's
 * config.yaml files ask for (`precision: int8`, `simplify: true`) into the cache folder, which
 * `serve` would otherwise build on its first start (the default recognizer: ~8 s). Run it where the
 * server will run, or in a container image's build, so that every start (every new pod) is ready in
 * seconds.
 */
import type { Command } from 'commander';
import { defaultCacheDir, int8Variant, simplifiedVariant } from '../quantize/int8-cache.js';
import { scanRepository } from '../repository/scan.js';
import { DEFAULT_MODEL_REPOSITORY } from '../server/start.js';

interface BuildCacheFlags {
  modelRepository?: string;
  cacheDir?: string;
}

export function registerBuildCacheCommand(program: Command): void {
  program
    .command('build-cache')
    .description(
      "build the int8 variants and simplified graphs that the repository's config.yaml files ask for (precision: int8, simplify: true) into the cache, so the first start does not",
    )
    .option('--model-repository <dir>', 'Triton-style model repository folder (default: the embedded OCR models)')
    .option(
      '--cache-dir <dir>',
      'the cache folder serve will use (default: env ONNX_SERVE_CACHE_DIR, else $XDG_CACHE_HOME/onnx-serve, else ~/.cache/onnx-serve)',
    )
    .action(async (flags: BuildCacheFlags) => {
      const repository = flags.modelRepository ?? DEFAULT_MODEL_REPOSITORY;
      const cacheDir = flags.cacheDir ?? defaultCacheDir();
      const scan = await scanRepository(repository);
      for (const { name, error } of scan.errors) process.stderr.write(`${name}: skipped, ${error}\n`);
      const wanted = scan.specs.filter((spec) => spec.config.precision === 'int8' || spec.config.simplify === true);
      if (wanted.length === 0) {
        process.stdout.write(
          `no model in ${repository} asks for precision: int8 or simplify: true; nothing to build\n`,
        );
        return;
      }
      for (const spec of wanted) {
        const label = `${spec.name}:${spec.version}`;
        const int8 = spec.config.precision === 'int8';
        const building = (reason: string) =>
          process.stdout.write(`${label}: building its ${int8 ? 'int8 variant' : 'simplified graph'} (${reason})\n`);
        const variant = int8
          ? await int8Variant({
              floatPath: spec.modelPath,
              config: spec.config,
              configDir: spec.configDir,
              cacheDir,
              building,
            })
          : await simplifiedVariant({ floatPath: spec.modelPath, cacheDir, building });
        process.stdout.write(
          variant.source === 'built'
            ? `${label}: built in ${variant.buildSeconds!.toFixed(1)} s: ${variant.path}\n`
            : `${label}: already in the cache: ${variant.path}\n`,
        );
      }
    });
}
