/**
 * Prepare Glassbox's training corpus: the World English Bible (public domain) from Debian's
 * `sword-text-web` package, a SWORD "zText" module, read here with nothing but node:zlib.
 *
 *   npm run corpus        (needs `apt-get install sword-text-web`; then scripts/corpus-brown.ts runs)
 *
 * Writes corpus/web.txt.gz (the prepared text, gzip) and corpus/README.md (provenance and statistics).
 * Training reads the committed text, so nobody needs apt or SWORD to reproduce a model.
 *
 * A zText module is three files per testament (ot.* and nt.*):
 *   .bzs  block index: one entry per compressed block, (offset u32, size u32, uncompressed size u32), LE
 *   .bzz  the blocks themselves, each a zlib stream (CompressType=ZIP); here one block per book
 *   .bzv  verse index: one entry per "slot", (block u32, offset in the uncompressed block u32, size u16), LE
 * The slots follow the module's versification (here NRSVA, which includes the deuterocanon): slot 0 is the
 * module header, slot 1 the testament heading, then per book one intro slot and per chapter one heading
 * slot ("verse 0") followed by one slot per verse. We do not hard-code that table: the OSIS text itself
 * marks every chapter with <chapter sID="Gen.1"/> in its heading slot, so a verse's number is its slot
 * minus its chapter's heading slot, and the script checks that the markers and the slots agree.
 */
import { execFileSync, type ExecFileSyncOptionsWithStringEncoding } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, inflateSync } from 'node:zlib';
import * as prettier from 'prettier';
import { splitCorpus, VALIDATION_PERCENT, VALIDATION_SEED } from '../src/corpus/split.ts';

const PACKAGE = 'sword-text-web';
const SWORD_ROOT = '/usr/share/sword';

/**
 * Heading names for every book we keep, by OSIS id, in the module's order. Psalms chapters are headed
 * "Psalm 23" as the module's own chapter labels do.
 */
// prettier-ignore
const BOOK_NAMES: Record<string, string> = {
  Gen: 'Genesis', Exod: 'Exodus', Lev: 'Leviticus', Num: 'Numbers', Deut: 'Deuteronomy', Josh: 'Joshua',
  Judg: 'Judges', Ruth: 'Ruth', '1Sam': '1 Samuel', '2Sam': '2 Samuel', '1Kgs': '1 Kings', '2Kgs': '2 Kings',
  '1Chr': '1 Chronicles', '2Chr': '2 Chronicles', Ezra: 'Ezra', Neh: 'Nehemiah', Esth: 'Esther', Job: 'Job',
  Ps: 'Psalm', Prov: 'Proverbs', Eccl: 'Ecclesiastes', Song: 'Song of Solomon', Isa: 'Isaiah',
  Jer: 'Jeremiah', Lam: 'Lamentations', Ezek: 'Ezekiel', Dan: 'Daniel', Hos: 'Hosea', Joel: 'Joel',
  Amos: 'Amos', Obad: 'Obadiah', Jonah: 'Jonah', Mic: 'Micah', Nah: 'Nahum', Hab: 'Habakkuk',
  Zeph: 'Zephaniah', Hag: 'Haggai', Zech: 'Zechariah', Mal: 'Malachi',
  Tob: 'Tobit', Jdt: 'Judith', EsthGr: 'Esther (Greek)', Wis: 'Wisdom of Solomon', Sir: 'Sirach',
  Bar: 'Baruch', '1Macc': '1 Maccabees', '2Macc': '2 Maccabees', '1Esd': '1 Esdras',
  PrMan: 'Prayer of Manasses', AddPs: 'Psalm 151', '3Macc': '3 Maccabees', '2Esd': '2 Esdras',
  '4Macc': '4 Maccabees',
  Matt: 'Matthew', Mark: 'Mark', Luke: 'Luke', John: 'John', Acts: 'Acts', Rom: 'Romans',
  '1Cor': '1 Corinthians', '2Cor': '2 Corinthians', Gal: 'Galatians', Eph: 'Ephesians', Phil: 'Philippians',
  Col: 'Colossians', '1Thess': '1 Thessalonians', '2Thess': '2 Thessalonians', '1Tim': '1 Timothy',
  '2Tim': '2 Timothy', Titus: 'Titus', Phlm: 'Philemon', Heb: 'Hebrews', Jas: 'James', '1Pet': '1 Peter',
  '2Pet': '2 Peter', '1John': '1 John', '2John': '2 John', '3John': '3 John', Jude: 'Jude', Rev: 'Revelation',
};

/**
 * Books present in the module that we leave out, and why. NRSVA has no slots for the WEB's "Daniel (Greek)",
 * so osis2mod stored the whole book in one slot (Hosea's intro), without verse boundaries; and as a slot's
 * size is a u16, the index records its 125,566 bytes as 60,030.
 */
const EXCLUDED_BOOKS: Record<string, string> = {
  DanGr:
    'Daniel with the Greek additions. The module stores the whole book in one verse slot, so its verse ' +
    "boundaries are lost, and the slot's 16-bit size field cuts it short. Hebrew Daniel, which it largely " +
    'repeats, is kept',
};

// ---------------------------------------------------------------------------------------------------------
// 1. Find the module.

interface ModuleFiles {
  packageVersion: string;
  confPath: string;
  conf: Map<string, string>;
  dataDir: string;
}

function fail(message: string): never {
  console.error(`corpus: ${message}`);
  process.exit(1);
}

function findModule(): ModuleFiles {
  let packageVersion: string;
  let packageFiles: string[];
  try {
    const quiet: ExecFileSyncOptionsWithStringEncoding = {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    };
    packageVersion = execFileSync('dpkg-query', ['-W', '-f=${Version}', PACKAGE], quiet).trim();
    packageFiles = execFileSync('dpkg', ['-L', PACKAGE], quiet).split('\n');
  } catch {
    fail(`the Debian package ${PACKAGE} is not installed. Install it with:\n  apt-get install ${PACKAGE}`);
  }
  const confPath = packageFiles.find(
    (path) => path.startsWith(`${SWORD_ROOT}/mods.d/`) && path.endsWith('.conf'),
  );
  if (!packageVersion || !confPath) fail(`${PACKAGE} is listed but has no module .conf; reinstall it`);
  const conf = parseConf(readFileSync(confPath, 'utf8'));
  if (conf.get('ModDrv')?.toLowerCase() !== 'ztext')
    fail(`${confPath}: ModDrv is ${conf.get('ModDrv')}, not zText`);
  if (conf.get('CompressType') !== 'ZIP')
    fail(`${confPath}: CompressType ${conf.get('CompressType')} is not ZIP`);
  if (conf.get('SourceType') !== 'OSIS')
    fail(`${confPath}: SourceType ${conf.get('SourceType')} is not OSIS`);
  const dataDir = join(SWORD_ROOT, conf.get('DataPath') ?? fail(`${confPath}: no DataPath`));
  return { packageVersion, confPath, conf, dataDir };
}

/** A SWORD .conf is INI-like: `Key=Value` lines; a repeated key (History_x, Obsoletes) keeps the last. */
function parseConf(text: string): Map<string, string> {
  const conf = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z_][\w.]*)=(.*)$/.exec(line.trim());
    if (match) conf.set(match[1], match[2].trim());
  }
  return conf;
}

// ---------------------------------------------------------------------------------------------------------
// 2. Read a testament's slots (the raw OSIS of each verse slot).

function readTestament(dataDir: string, testament: 'ot' | 'nt', stats: WalkTotals): string[] {
  const blockIndex = readFileSync(join(dataDir, `${testament}.bzs`));
  const verseIndex = readFileSync(join(dataDir, `${testament}.bzv`));
  const compressed = readFileSync(join(dataDir, `${testament}.bzz`));
  if (blockIndex.length % 12 !== 0) throw new Error(`${testament}.bzs: size is not a multiple of 12`);
  if (verseIndex.length % 10 !== 0) throw new Error(`${testament}.bzv: size is not a multiple of 10`);

  const blocks: Buffer[] = [];
  for (let at = 0; at < blockIndex.length; at += 12) {
    const offset = blockIndex.readUInt32LE(at);
    const size = blockIndex.readUInt32LE(at + 4);
    const uncompressedSize = blockIndex.readUInt32LE(at + 8);
    const block = inflateSync(compressed.subarray(offset, offset + size));
    if (block.length !== uncompressedSize) {
      throw new Error(
        `${testament}.bzz block ${blocks.length}: ${block.length} bytes, index says ${uncompressedSize}`,
      );
    }
    blocks.push(block);
  }

  const slots: string[] = [];
  let previous = '';
  for (let at = 0; at < verseIndex.length; at += 10) {
    const block = verseIndex.readUInt32LE(at);
    const offset = verseIndex.readUInt32LE(at + 4);
    const size = verseIndex.readUInt16LE(at + 8);
    if (size > 0 && (block >= blocks.length || offset + size > blocks[block].length)) {
      throw new Error(`${testament}.bzv slot ${slots.length}: points outside block ${block}`);
    }
    // A "linked" slot points at the same entry as the slot before it: one text serves a range of verse
    // numbers (it happens in Sirach and 4 Maccabees). Keep the text once.
    const entry = `${block}:${offset}:${size}`;
    const linked = size > 0 && entry === previous;
    previous = entry;
    if (linked) stats.linkedSlots++;
    slots.push(size === 0 || linked ? '' : blocks[block].toString('utf8', offset, offset + size));
  }
  return slots;
}

// ---------------------------------------------------------------------------------------------------------
// 3. OSIS to plain text.

/** Elements dropped with everything inside them: footnotes and cross-references, headings, speaker labels. */
const DROPPED = new Set(['note', 'title', 'speaker']);
/** Elements whose tags vanish but whose text stays, glued to its neighbours (words, quotations). */
const INLINE = new Set(['w', 'q', 'seg', 'name', 'hi', 'transChange', 'divineName', 'foreign']);
/** Structural elements and milestones (lines, line groups, paragraphs, lists): a word boundary. */
const BREAKS = new Set(['l', 'lg', 'lb', 'div', 'chapter', 'milestone', 'list', 'item', 'p', 'verse']);

/** Marks where a footnote was. Resolved by resolveNoteGaps once the surrounding text is known. */
const NOTE_GAP = '\uE000';

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (entity, body: string) => {
    if (body.startsWith('#x')) return String.fromCodePoint(parseInt(body.slice(2), 16));
    if (body.startsWith('#')) return String.fromCodePoint(parseInt(body.slice(1), 10));
    const decoded = ENTITIES[body];
    if (decoded === undefined) throw new Error(`unknown XML entity ${entity}`);
    return decoded;
  });
}

/**
 * The module glues a footnote between words without spaces ("God<note>…</note>created"), yet also puts one
 * right after punctuation ("Behold,<note>…</note> I") and sometimes spaces on both sides of a note before a
 * question mark. So a removed note becomes a space only where it separated a word from what follows, takes
 * its surrounding spaces with it before punctuation, and otherwise vanishes.
 */
function resolveNoteGaps(text: string): string {
  return text
    .replace(/\s*\uE000+\s*(?=[,.;:!?])/gu, '') // "coins <note/> ?" → "coins?"
    .replace(/(?<=\S)\uE000+(?=[\p{L}\p{N}“‘([])/gu, ' ')
    .replaceAll(NOTE_GAP, '');
}

/** Collapse whitespace inside each line; drop empty lines. A verse is usually one line. */
function normaliseLines(text: string): string[] {
  return resolveNoteGaps(text)
    .normalize('NFC')
    .split('\n')
    .map((line) => line.replace(/\s+/g, ' ').trim())
    .filter((line) => line.length > 0);
}

interface Tag {
  name: string;
  closing: boolean;
  selfClosing: boolean;
  attributes: Map<string, string>;
}

function parseTag(source: string): Tag {
  const match = /^<(\/?)([A-Za-z][\w:]*)((?:\s+[\w:]+="[^"]*")*)\s*(\/?)>$/.exec(source);
  if (!match) throw new Error(`malformed OSIS tag ${source}`);
  const attributes = new Map<string, string>();
  for (const [, key, value] of match[3].matchAll(/([\w:]+)="([^"]*)"/g))
    attributes.set(key, decodeEntities(value));
  return { name: match[2], closing: match[1] === '/', selfClosing: match[4] === '/', attributes };
}

// ---------------------------------------------------------------------------------------------------------
// 4. Walk the slots of a testament and collect chapters.

interface ChapterText {
  book: string;
  chapter: number;
  /** Verse number → text (may hold a line break: a psalm's superscription precedes verse 1). */
  verses: Map<number, string>;
}

interface WalkTotals {
  /** Characters of text outside any kept chapter (preface, book introductions, glossary, excluded books). */
  droppedOutsideChapters: number;
  notes: number;
  titlesDropped: number;
  superscriptionsKept: number;
  /** Slots that repeat the previous slot's entry (a text linked to several verse numbers). */
  linkedSlots: number;
  /** Chapters whose end marker is missing, closed by the next chapter's start. */
  unclosedChapters: string[];
}

function walkTestament(slots: string[], name: string, totals: WalkTotals): ChapterText[] {
  const chapters: ChapterText[] = [];
  let current: ChapterText | undefined;
  let currentExcluded = false;
  let headingSlot = 0;
  const dropStack: string[] = [];
  let keptTitleOpen = false;

  const emit = (slot: number, text: string) => {
    if (!current || currentExcluded) {
      if (dropStack.length === 0) totals.droppedOutsideChapters += text.trim().length;
      return;
    }
    const verse = slot - headingSlot;
    current.verses.set(verse, (current.verses.get(verse) ?? '') + text);
  };

  slots.forEach((osis, slot) => {
    for (const [token] of osis.matchAll(/<[^>]*>|[^<]+/g)) {
      if (!token.startsWith('<')) {
        if (dropStack.length === 0) emit(slot, decodeEntities(token));
        continue;
      }
      const tag = parseTag(token);

      // Inside a dropped element only its own nesting matters.
      if (dropStack.length > 0) {
        if (tag.name === dropStack[dropStack.length - 1] && !tag.selfClosing) {
          if (tag.closing) dropStack.pop();
          else dropStack.push(tag.name);
          if (dropStack.length === 0) emit(slot, tag.name === 'note' ? NOTE_GAP : ' ');
        }
        continue;
      }

      if (tag.name === 'chapter' && tag.attributes.has('sID')) {
        const osisId = tag.attributes.get('osisID') ?? '';
        const [book, number] = osisId.split('.');
        // Where the WEB has more verses than the versification, osis2mod can lose a chapter's end marker
        // (Esther (Greek) 4); the next chapter's start closes it just as well.
        if (current && !currentExcluded) totals.unclosedChapters.push(`${current.book}.${current.chapter}`);
        currentExcluded = book in EXCLUDED_BOOKS;
        if (!currentExcluded && !(book in BOOK_NAMES))
          throw new Error(`${name} slot ${slot}: unknown book ${book}`);
        current = { book, chapter: Number(number), verses: new Map() };
        if (!currentExcluded) chapters.push(current);
        headingSlot = slot;
      } else if (tag.name === 'chapter' && tag.attributes.has('eID')) {
        current = undefined;
        currentExcluded = false;
      } else if (tag.name === 'title' && tag.attributes.get('canonical') === 'true' && !tag.selfClosing) {
        // A psalm's superscription ("A Psalm by David.") is part of the text: keep it, on its own line.
        keptTitleOpen = true;
        totals.superscriptionsKept++;
        emit(slot, '\n');
      } else if (tag.name === 'title' && tag.closing && keptTitleOpen) {
        keptTitleOpen = false;
        emit(slot, '\n');
      } else if (DROPPED.has(tag.name)) {
        if (tag.closing) throw new Error(`${name} slot ${slot}: stray ${token}`);
        if (tag.name === 'note') totals.notes++;
        if (tag.name === 'title') totals.titlesDropped++;
        if (!tag.selfClosing) dropStack.push(tag.name);
      } else if (INLINE.has(tag.name)) {
        // Nothing: the text inside stays where it is.
      } else if (BREAKS.has(tag.name)) {
        emit(slot, ' ');
      } else {
        throw new Error(
          `${name} slot ${slot}: unexpected OSIS element ${token}; teach scripts/corpus.ts about it`,
        );
      }
    }
  });
  if (current && !currentExcluded)
    throw new Error(`${name}: chapter ${current.book}.${current.chapter} never ends`);
  return chapters;
}

// ---------------------------------------------------------------------------------------------------------
// 5. Lay out the text.

interface LaidOutChapter {
  heading: string;
  verseLines: string[];
  verses: number;
}

/** Check each book's chapters run 1..n in order, and every named book is present. */
function checkBooks(chapters: ChapterText[]): Map<string, number> {
  const chapterCounts = new Map<string, number>();
  for (const { book, chapter } of chapters) {
    const expected = (chapterCounts.get(book) ?? 0) + 1;
    if (chapter !== expected) throw new Error(`${book}: chapter ${chapter} where ${expected} was expected`);
    chapterCounts.set(book, expected);
  }
  const missing = Object.keys(BOOK_NAMES).filter((book) => !chapterCounts.has(book));
  if (missing.length > 0) throw new Error(`books missing from the module: ${missing.join(', ')}`);
  return chapterCounts;
}

function layOut(chapters: ChapterText[]): LaidOutChapter[] {
  const chapterCounts = checkBooks(chapters);
  return chapters.map(({ book, chapter, verses }) => {
    // "Obadiah", "Jude", "Psalm 151": a one-chapter book is headed by its name alone.
    const heading = chapterCounts.get(book) === 1 ? BOOK_NAMES[book] : `${BOOK_NAMES[book]} ${chapter}`;
    // Text in the heading slot ("verse 0") is a chapter's own preface, such as Sirach 51's "A Prayer of
    // Jesus the son of Sirach.": kept as a line before verse 1, like a psalm's superscription.
    const preamble = normaliseLines(verses.get(0) ?? '');
    if (preamble.length > 0) console.log(`${heading}: kept text before verse 1: ${preamble.join(' / ')}`);
    const numbers = [...verses.keys()].filter((verse) => verse > 0).sort((a, b) => a - b);
    const verseLines = [...preamble];
    let nonEmpty = 0;
    for (const verse of numbers) {
      const lines = normaliseLines(verses.get(verse) ?? '');
      if (lines.length > 0) nonEmpty++;
      verseLines.push(...lines);
    }
    if (nonEmpty === 0) throw new Error(`${heading}: no verses`);
    return { heading, verseLines, verses: nonEmpty };
  });
}

// ---------------------------------------------------------------------------------------------------------
// 6. Write corpus/web.txt.gz and corpus/README.md.

function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) fail('cannot find the repository root (no package.json above this script)');
    dir = parent;
  }
  return dir;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const formatBytes = (bytes: number) =>
  `${bytes.toLocaleString('en-US')} bytes (${(bytes / 2 ** 20).toFixed(2)} MiB)`;

function describeSplitPart(label: string, text: string, chapters: LaidOutChapter[]): string {
  const verses = chapters.reduce((sum, chapter) => sum + chapter.verses, 0);
  return `| ${label} | ${formatBytes(Buffer.byteLength(text))} | ${chapters.length} | ${verses} |`;
}

async function main(): Promise<void> {
  const module = findModule();
  const totals: WalkTotals = {
    droppedOutsideChapters: 0,
    notes: 0,
    titlesDropped: 0,
    superscriptionsKept: 0,
    linkedSlots: 0,
    unclosedChapters: [],
  };
  const chapters = [
    ...walkTestament(readTestament(module.dataDir, 'ot', totals), 'ot', totals),
    ...walkTestament(readTestament(module.dataDir, 'nt', totals), 'nt', totals),
  ];
  const laidOut = layOut(chapters);
  const headings = new Set(laidOut.map((chapter) => chapter.heading));
  if (headings.size !== laidOut.length)
    throw new Error('two chapters share a heading; the split needs them unique');

  const text =
    laidOut.map((chapter) => [chapter.heading, ...chapter.verseLines].join('\n')).join('\n\n') + '\n';
  const textBytes = Buffer.from(text, 'utf8');
  // Level 9 and Node's fixed gzip header (mtime 0, no file name) make the file depend only on the text.
  const gzipped = gzipSync(textBytes, { level: 9 });

  const byHeading = new Map(laidOut.map((chapter) => [chapter.heading, chapter]));
  const split = splitCorpus(text);
  const trainChapters = split.trainChapters.map((chapter) => byHeading.get(chapter.heading)!);
  const valChapters = split.valChapters.map((chapter) => byHeading.get(chapter.heading)!);
  const books = [...new Set(chapters.map((chapter) => chapter.book))];
  const verses = laidOut.reduce((sum, chapter) => sum + chapter.verses, 0);

  const root = repositoryRoot();
  const outDir = join(root, 'corpus');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'web.txt.gz'), gzipped);
  const readme = renderReadme({
    module,
    totals,
    books,
    chapters: laidOut.length,
    verses,
    headingBytes: laidOut.reduce((sum, chapter) => sum + Buffer.byteLength(chapter.heading) + 1, 0),
    textBytes: textBytes.length,
    gzipBytes: gzipped.length,
    textSha256: sha256(textBytes),
    splitRows: [
      describeSplitPart('train', split.train, trainChapters),
      describeSplitPart('val', split.val, valChapters),
    ],
    valHeadings: valChapters.map((chapter) => chapter.heading),
  });
  // Formatted with the repository's Prettier settings so that `npm run lint` accepts the generated file.
  const readmePath = join(outDir, 'README.md');
  const prettierOptions = await prettier.resolveConfig(readmePath);
  writeFileSync(readmePath, await prettier.format(readme, { ...prettierOptions, filepath: readmePath }));

  console.log(`corpus/web.txt.gz: ${formatBytes(gzipped.length)}, text ${formatBytes(textBytes.length)}`);
  console.log(
    `${books.length} books, ${laidOut.length} chapters, ${verses} verses; sha256 ${sha256(textBytes)}`,
  );
  console.log(`train ${split.trainChapters.length} chapters, val ${split.valChapters.length} chapters`);
}

interface ReadmeFacts {
  module: ModuleFiles;
  totals: WalkTotals;
  books: string[];
  chapters: number;
  verses: number;
  headingBytes: number;
  textBytes: number;
  gzipBytes: number;
  textSha256: string;
  splitRows: string[];
  valHeadings: string[];
}

function renderReadme(facts: ReadmeFacts): string {
  const conf = facts.module.conf;
  const moduleName = /\[(.+)\]/.exec(readFileSync(facts.module.confPath, 'utf8'))?.[1] ?? '?';
  const percent = (part: number) => ((100 * part) / facts.textBytes).toFixed(1);
  const excluded = Object.entries(EXCLUDED_BOOKS).map(([book, why]) => `\`${book}\`: ${why}`);
  return `# The training corpus: text from the World English Bible

\`web.txt.gz\` is the text Glassbox trained its tokenizer and house model (version 1) on. The corpus's second
source, modern American English from the Brown corpus, is \`brown.txt.gz\`, described in
[brown.md](brown.md). \`npm run corpus\` (\`scripts/corpus.ts\`, then \`scripts/corpus-brown.ts\`) generates
both and their descriptions: edit the scripts, not these files.

## Provenance

- Source: Debian package \`${PACKAGE}\` version ${facts.module.packageVersion}, SWORD module \`${moduleName}\`
  ("${conf.get('Description')}"), module version ${conf.get('Version')} (${conf.get('SwordVersionDate')}),
  ${conf.get('SourceType')} markup, versification ${conf.get('Versification')}.
- Licence: ${conf.get('DistributionLicense')}. The module's .conf: "${conf.get('CopyrightNotes')}"
- "World English Bible" is a trademark of eBible.org, whose one request is that a _changed_ text not be called
  the World English Bible. We change no words of the verses, but we drop footnotes, headings and whole
  sections (below), so call this "text from the World English Bible".
- Read straight from the module's files (zText: block index, verse index, zlib blocks) with node:zlib; no
  SWORD library is involved.

## What is in it

${facts.books.length} books in the module's order: the Old Testament, the deuterocanonical books the module
carries, then the New Testament.

Left out:

- ${excluded.join('\n- ')};
- the translators' preface, the book introductions and the glossary (not verse text);
- footnotes (${facts.totals.notes}, cross-references included), headings (${facts.totals.titlesDropped} titles
  such as "BOOK 1" in Psalms), the speaker labels of the Song of Solomon, Strong's numbers and all other
  markup.

Kept: every word of the verses; the translation's own punctuation (curly quotes and apostrophes, em dashes);
the ${facts.totals.superscriptionsKept} psalm superscriptions ("A Psalm by David."), which the module marks
as canonical text, and Sirach 51's opening line, each on a line of its own before verse 1. Poetry lines,
paragraph breaks and line groups become single spaces inside a verse; XML entities are decoded; whitespace is
collapsed; the text is Unicode NFC.

Quirks of the module, handled: ${facts.totals.linkedSlots} verse slots repeat the previous slot's text (one
text serving several verse numbers, in Sirach and 4 Maccabees) and are kept once; where the WEB has more verses
than the versification, the extra text sits in the next chapter's heading slot, which we read as the end of
the chapter before it, and a lost end-of-chapter marker (${facts.totals.unclosedChapters.join(', ') || 'none'})
is closed by the next chapter's start. The module itself lacks part of Greek Esther's additions to chapter 4
(the prayers of Mordecai and Esther).

## Layout

\`\`\`text
Genesis 1
In the beginning, God created the heavens and the earth.
The earth was formless and empty. Darkness was on the surface of the deep and God’s Spirit was hovering …
…

Genesis 2
…
\`\`\`

One chapter per block: a heading line (\`Book N\`; Psalms as \`Psalm N\`; a one-chapter book by its name
alone, e.g. \`Jude\`), then one verse per line, and a blank line between chapters. Why:

- The verse is the unit the text was written and numbered in, so a line never stops mid-thought the way a
  poetry line or a wrapped paragraph does, and a small model learns one plain rhythm: a newline ends a
  verse, a blank line ends a chapter.
- The headings teach the model the book-and-chapter reference system ("Psalm 23" works as a prompt) for
  ${percent(facts.headingBytes)}% of the bytes.
- Whole-chapter blocks are what the validation split holds out.
- Verse numbers are left out: they would add a number token to every line and teach nothing about language.

## Statistics

|       | bytes                           | chapters         | verses         |
| ----- | ------------------------------- | ---------------- | -------------- |
| all   | ${formatBytes(facts.textBytes)} | ${facts.chapters} | ${facts.verses} |
${facts.splitRows.join('\n')}

- \`web.txt.gz\`: ${formatBytes(facts.gzipBytes)}, gzip level 9.
- sha256 of the uncompressed text: \`${facts.textSha256}\`. (The gzip bytes can differ between zlib
  versions; the text cannot.)
- A verse the WEB leaves out of its main text (printing it only in a footnote, e.g. Matthew 17:21) has no
  line and is not counted.

## Validation split

\`splitCorpus(text)\` in \`src/corpus/split.ts\` holds out whole chapters: a chapter is in the validation set
when FNV-1a-32 of the UTF-8 bytes of \`"${VALIDATION_SEED}" + heading\`, mod 100, is below ${VALIDATION_PERCENT}
(so about ${VALIDATION_PERCENT}% of the chapters). Parallel passages (Kings and Chronicles, Psalms 14 and 53,
1 Esdras and Ezra, the two Esthers) mean that some validation text has near-copies in the training text;
keep that in mind when reading validation loss.

The ${facts.valHeadings.length} validation chapters:

<!-- validation-chapters -->

${facts.valHeadings.join(', ')}

<!-- /validation-chapters -->
`;
}

await main();
