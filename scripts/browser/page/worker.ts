/** The page's worker: runs the benchmark (bench.ts, decode.ts, train.ts) or the checks (check.ts) and posts what they report. */
import { runBench } from './bench.ts';
import { runChecks } from './check.ts';
import { runDecodeBench } from './decode.ts';
import { runTrainBench } from './train.ts';
import type { PageMessage, PageRequest } from './protocol.ts';

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<PageRequest>) => void) | null;
  postMessage(message: PageMessage): void;
};

scope.onmessage = async ({ data: request }) => {
  const log = (line: string) => scope.postMessage({ type: 'log', line });
  try {
    const result =
      request.task === 'check'
        ? await runChecks(log)
        : request.task === 'train'
          ? await runTrainBench(request.train!, log)
          : request.task === 'decode'
            ? await runDecodeBench(request.quick, request.parts!, log)
            : await runBench(request.quick, log);
    scope.postMessage({ type: 'result', result });
  } catch (error) {
    scope.postMessage({ type: 'error', message: error instanceof Error ? `${error.stack}` : String(error) });
  }
};
