/**
 * The page the Chromium benchmark and the browser test load. It runs its task in a Web Worker — where the
 * app's engine runs, and where a thread may wait on Atomics — and passes every message on to the Node
 * driver (../chromium.ts) through `glassboxReport`, a function Playwright exposes to the page.
 */
import type { PageMessage, PageRequest } from './protocol.ts';

const report = (message: PageMessage) => {
  (window as { glassboxReport?: (message: PageMessage) => void }).glassboxReport?.(message);
  if (message.type !== 'log') document.getElementById('status')!.textContent = message.type;
};

const params = new URLSearchParams(location.search);
const task = params.get('task');
const parts = (params.get('parts') ?? '').split(',');
const request: PageRequest = {
  task: task === 'check' || task === 'train' || task === 'decode' ? task : 'bench',
  quick: params.has('quick'),
  train: params.has('train') ? (JSON.parse(params.get('train')!) as PageRequest['train']) : undefined,
  parts: { batching: parts.includes('batching'), quantized: parts.includes('quantized') },
};
const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
worker.onmessage = (event: MessageEvent<PageMessage>) => report(event.data);
worker.onerror = (event) => report({ type: 'error', message: `worker: ${event.message}` });
worker.postMessage(request);
