// The control client's thread: GetSSHKeys one after another until told to stop, then the figures.
import { parentPort, workerData } from 'node:worker_threads';
import { controlLoop } from './common.js';

const { target, baselineKeys, pauseMs } = workerData as { target: { port: number; socket: string | undefined }; baselineKeys: number; pauseMs: number };
let stop = false;
parentPort!.on('message', (m) => {
  if (m === 'stop') stop = true;
});
const figures = await controlLoop(target, baselineKeys, pauseMs, () => stop);
parentPort!.postMessage(figures);
parentPort!.close();
