// Images in, answers out: a model's preprocessing and postprocessing (or a pipeline such as ocr) in your process.
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { defaultModelRepository, loadRepository, type OcrLine, type ScoredLabel } from 'onnx-serve';

// A photo's bytes: a file you read (as below, when a path is given), an upload, a fetch() answer.
// Without a path, this renders a small page of text to PNG.
const page = `<svg xmlns="http://www.w3.org/2000/svg" width="480" height="160"><rect width="100%" height="100%" fill="white"/>
  <text x="30" y="60" font-family="DejaVu Sans" font-size="28">Invoice 2026-0042</text>
  <text x="30" y="120" font-family="DejaVu Sans" font-size="28">Total due: 99.50 EUR</text></svg>`;
const image = process.argv[2] ? await readFile(process.argv[2]) : await sharp(Buffer.from(page)).png().toBuffer();

const repository = await loadRepository(defaultModelRepository);
try {
  // The ocr pipeline: detect text boxes, straighten them, turn the page if needed, read every line.
  const ocr = await repository.model('ocr').predict<OcrLine[]>(image);
  for (const line of ocr.results[0]) console.log(`read: ${line.text}`);

  // A single model with preprocess and postprocess in its config.yaml: here, top-k labels.
  const orientation = await repository.model('text-orientation').predict<ScoredLabel[]>(image);
  console.log('orientation:', orientation.results[0][0].label);
} finally {
  await repository.close();
}
