/**
 * Builds the WebAssembly kernels: compiles the AssemblyScript sources (the matrix products of
 * `src/kernels/matmul.as` and the layer operations of `src/kernels/layer.as`, which share the helpers of
 * `src/kernels/simd.as`) into one module, four times — with relaxed SIMD, whose multiply-add is fused, and
 * with plain SIMD, each for a private memory (one thread) and for a shared memory that worker threads run
 * the same code on — and writes the binaries, base64-encoded, into `src/kernels/wasm-binaries.ts`. That
 * generated file is committed, so the engine loads its kernels in Node and in the browser with no build
 * step and no fetch; `tests/kernels-build.test.ts` rebuilds from source and fails if the committed bytes
 * differ, so source and binary never drift apart.
 *
 * Run: `npm run build:kernels` (= `npm run build && node dist/src/kernels/build.js`).
 * The output depends only on the sources and the exact `assemblyscript` version in package-lock.json.
 */
import asc from 'assemblyscript/asc';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The four builds, named as in `wasm-binaries.ts`. */
export interface KernelBinaries {
  /** Plain 128-bit SIMD: multiply, then add. */
  simd: Uint8Array;
  /** Relaxed SIMD: f32x4.relaxed_madd, a fused multiply-add where the CPU has one. */
  relaxedSimd: Uint8Array;
  /** `simd` importing a shared memory, for several threads. */
  simdShared: Uint8Array;
  /** `relaxedSimd` importing a shared memory, for several threads. */
  relaxedSimdShared: Uint8Array;
}

/** The AssemblyScript sources, relative to the repository root; the first ENTRIES are the module's entries. */
export const KERNEL_SOURCES = [
  'src/kernels/matmul.as',
  'src/kernels/layer.as',
  'src/kernels/quant.as',
  'src/kernels/train.as',
  'src/kernels/simd.as',
];
const ENTRIES = 4;
/** The generated module, relative to the repository root. */
export const KERNEL_BINARIES = 'src/kernels/wasm-binaries.ts';
/**
 * The most 64 KiB pages a shared memory may declare (4 GiB, all that 32-bit addresses reach): the
 * module accepts any shared memory up to this; wasm.ts chooses the actual maximum.
 */
export const SHARED_MEMORY_MAXIMUM_PAGES = 65536;

/** The repository root: the nearest folder above this file (in src/ or in dist/src/) with a package.json. */
export function repositoryRoot(): string {
  let folder = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(folder, 'package.json'))) {
    const parent = dirname(folder);
    if (parent === folder)
      throw new Error('build-kernels: no package.json above ' + fileURLToPath(import.meta.url));
    folder = parent;
  }
  return folder;
}

/** The sources as AssemblyScript sees them: `matmul.as` becomes `matmul.ts`, so that imports resolve. */
export type KernelSources = Record<string, string>;

/** Reads the kernel sources from a repository checkout. */
export function readKernelSources(root = repositoryRoot()): KernelSources {
  const sources: KernelSources = {};
  for (const path of KERNEL_SOURCES) {
    sources[basename(path).replace(/\.as$/, '.ts')] = readFileSync(join(root, path), 'utf8');
  }
  return sources;
}

async function compileVariant(
  sources: KernelSources,
  relaxed: boolean,
  shared: boolean,
): Promise<Uint8Array> {
  const features = ['simd', ...(relaxed ? ['relaxed-simd'] : []), ...(shared ? ['threads'] : [])];
  const flags = [
    ...['--optimizeLevel', '3', '--shrinkLevel', '0'],
    // No garbage collector and no allocator: the module only reads and writes memory that JS manages.
    ...['--runtime', 'stub', '--noAssert'],
    ...['--importMemory', '--noExportMemory', '--enable', features.join(',')],
    ...(shared ? ['--sharedMemory', '--maximumMemory', String(SHARED_MEMORY_MAXIMUM_PAGES)] : []),
    // Nothing in the kernels can fail an assertion, so the module imports no `abort`.
    ...['--use', 'abort='],
  ];
  const entries = Object.keys(sources).slice(0, ENTRIES);
  const outputs: Record<string, Uint8Array | string> = {};
  const stderr = asc.createMemoryStream();
  const { error } = await asc.main([...entries, '--outFile', 'kernels.wasm', ...flags], {
    stderr,
    readFile: (name) => (Object.hasOwn(sources, name) ? sources[name] : null),
    writeFile: (name, contents) => {
      outputs[name] = contents;
    },
    listFiles: () => [],
  });
  const binary = outputs['kernels.wasm'];
  if (error || !(binary instanceof Uint8Array)) {
    const name = `${relaxed ? 'relaxed SIMD' : 'SIMD'}${shared ? ', shared memory' : ''}`;
    throw new Error(`build-kernels: AssemblyScript failed (${name}):\n${stderr.toString()}`);
  }
  return binary;
}

/** Compiles the kernel sources into all four builds. */
export async function compileKernels(sources: KernelSources): Promise<KernelBinaries> {
  return {
    simd: await compileVariant(sources, false, false),
    relaxedSimd: await compileVariant(sources, true, false),
    simdShared: await compileVariant(sources, false, true),
    relaxedSimdShared: await compileVariant(sources, true, true),
  };
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** What each build is, for the comments of the generated module. */
const BUILD_NOTES: Record<keyof KernelBinaries, string> = {
  simd: '128-bit SIMD',
  relaxedSimd: 'relaxed SIMD',
  simdShared: '128-bit SIMD on a shared memory',
  relaxedSimdShared: 'relaxed SIMD on a shared memory',
};

/** The text of `src/kernels/wasm-binaries.ts` for these binaries (already in Prettier's format). */
export function renderBinariesModule(binaries: KernelBinaries): string {
  const lines = [
    `// Generated by \`npm run build:kernels\` from ${KERNEL_SOURCES.join(', ')}: do not edit.`,
    '// tests/kernels-build.test.ts rebuilds the sources and fails if these bytes differ.',
  ];
  for (const build of Object.keys(BUILD_NOTES) as (keyof KernelBinaries)[]) {
    const bytes = binaries[build];
    lines.push(
      '',
      `/** The kernels built for ${BUILD_NOTES[build]} (${bytes.byteLength} bytes of WebAssembly). */`,
      `export const ${build}Base64 =`,
      `  '${toBase64(bytes)}';`,
    );
  }
  return lines.join('\n') + '\n';
}

async function main(): Promise<void> {
  const binaries = await compileKernels(readKernelSources());
  writeFileSync(join(repositoryRoot(), KERNEL_BINARIES), renderBinariesModule(binaries));
  const sizes = (Object.keys(binaries) as (keyof KernelBinaries)[]).map(
    (build) => `${build} ${binaries[build].byteLength} B`,
  );
  console.log(`build-kernels: wrote ${KERNEL_BINARIES} (${sizes.join(', ')})`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
