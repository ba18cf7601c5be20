/**
 * Renders the photo set (specs.ts) into bench/ocr-set/: one JPEG per photo and truth.json
 * ({name: [row, …]}, rows in reading order). Deterministic: rerunning it gives the same truth
 * (the JPEG bytes depend on the installed sharp/libvips and fonts).
 *
 *   node --import tsx bench/ocr-set/generate.ts
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderPhoto } from '../../test/helpers/ocr-photos.js';
import { PHOTO_SET } from './specs.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const truth: Record<string, string[]> = {};
for (const spec of PHOTO_SET) {
  const photo = await renderPhoto(spec);
  writeFileSync(path.join(here, `${spec.name}.jpg`), photo.jpeg);
  truth[spec.name] = photo.truth;
  console.log(`${spec.name}.jpg ${(photo.jpeg.length / 1024).toFixed(0)} KB, ${photo.truth.length} rows`);
}
writeFileSync(path.join(here, 'truth.json'), `${JSON.stringify(truth, null, 2)}\n`);
