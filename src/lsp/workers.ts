/**
 * The server's side of the analysis workers (./worker.ts): which worker holds which large
 * document, the newest version each was sent, and the requests waiting for a worker's answer.
 * Nothing here waits: a request resolves when its worker answers or when the client cancels it,
 * whichever comes first, so the connection's thread keeps answering everything else (issue #22).
 */
import { Worker } from 'node:worker_threads';
import { LSPErrorCodes, ResponseError, ErrorCodes, type CancellationToken, type Diagnostic } from 'vscode-languageserver/node';
import type { Feature, ParamsOf, ResultOf } from './requests.ts';
import type { FromWorker, ToWorker } from './worker.ts';

/**
 * At most this many workers: two large documents get one each (neither waits for the other's
 * analysis); a third shares the one with fewer documents. Each worker holds its own copy of the
 * front end (some 50 MB), so not one per document.
 */
export const MAX_WORKERS = 2;

/**
 * Starts a worker on ./worker.ts. Run from TypeScript (a checkout, tsx), a worker does not inherit
 * the loader tsx registered on the main thread, so a two-line script registers it there first;
 * run from dist/ (`npm run build`), the worker is the compiled ./worker.js.
 */
function startWorker(): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./worker.js', here));
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./worker.ts', here).href;
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true });
}

interface Slot {
  worker: Worker;
  uris: Set<string>;
}

interface Waiting {
  slot: Slot;
  settle: (m: Extract<FromWorker, { type: 'answer' | 'failed' }>) => void;
}

export interface WorkerHooks {
  /** A document's current version and text, or undefined when it is not open. */
  current(uri: string): { version: number; text: string } | undefined;
  /** A worker analysed `version` of `uri` (perhaps no longer the current one). */
  diagnostics(uri: string, version: number, diagnostics: Diagnostic[]): void;
  /** Something the server should log (a worker that failed). */
  log(message: string): void;
}

export class AnalysisWorkers {
  private readonly slots: Slot[] = [];
  private readonly homes = new Map<string, Slot>();
  /** The version of each document its worker has. */
  private readonly sent = new Map<string, number>();
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 0;

  constructor(private readonly hooks: WorkerHooks) {}

  /** Whether a worker holds this document (it stays there until closed). */
  holds(uri: string): boolean {
    return this.homes.has(uri);
  }

  /** Gives the document's current version to its worker (once per version), which analyses it. */
  sync(uri: string): void {
    const cur = this.hooks.current(uri);
    if (!cur || this.sent.get(uri) === cur.version) return;
    this.sent.set(uri, cur.version);
    this.post(this.homeOf(uri), { type: 'text', uri, version: cur.version, text: cur.text });
  }

  close(uri: string): void {
    const slot = this.homes.get(uri);
    if (!slot) return;
    this.post(slot, { type: 'close', uri });
    slot.uris.delete(uri);
    this.homes.delete(uri);
    this.sent.delete(uri);
  }

  /**
   * Request `feature` on a document its worker holds: resolves with the worker's answer (after
   * it analysed the version last synced), or RequestCancelled as soon as the client cancels.
   */
  request<F extends Feature>(uri: string, feature: F, params: ParamsOf<F>, token: CancellationToken): Promise<ResultOf<F> | ResponseError<void>> {
    this.sync(uri);
    const slot = this.homeOf(uri);
    const id = this.nextId++;
    return new Promise((resolve) => {
      const cancel = token.onCancellationRequested(() => {
        this.waiting.delete(id);
        this.post(slot, { type: 'cancel', id });
        resolve(new ResponseError(LSPErrorCodes.RequestCancelled, 'the request was cancelled'));
      });
      this.waiting.set(id, {
        slot,
        settle: (m) => {
          cancel.dispose();
          this.waiting.delete(id);
          resolve(m.type === 'answer' ? (m.result as ResultOf<F>) : new ResponseError(ErrorCodes.InternalError, `vmm lsp: ${feature} failed: ${m.message}`));
        },
      });
      this.post(slot, { type: 'request', id, uri, feature, params });
    });
  }

  private homeOf(uri: string): Slot {
    let slot = this.homes.get(uri);
    if (slot) return slot;
    // A worker with no document (its documents were closed), else a new one, else the least busy.
    slot = this.slots.find((x) => x.uris.size === 0) ?? (this.slots.length < MAX_WORKERS ? this.start() : this.slots.reduce((x, y) => (y.uris.size < x.uris.size ? y : x)));
    slot.uris.add(uri);
    this.homes.set(uri, slot);
    return slot;
  }

  private start(): Slot {
    const worker = startWorker();
    // The workers never keep the process alive: it ends with the connection (`exit`, stdin's end).
    worker.unref();
    const slot: Slot = { worker, uris: new Set() };
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'diagnostics') this.hooks.diagnostics(m.uri, m.version, m.diagnostics);
      else this.waiting.get(m.id)?.settle(m);
    });
    worker.on('error', (e) => this.lost(slot, e instanceof Error ? (e.stack ?? e.message) : String(e)));
    worker.on('exit', (code) => this.lost(slot, `exited with code ${code}`));
    this.slots.push(slot);
    return slot;
  }

  /**
   * A worker that failed: its waiting requests get an error and its documents a new worker when
   * next synced (an edit or a request), not at once, so a document that kills its worker cannot
   * restart workers in a loop.
   */
  private lost(slot: Slot, why: string): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    this.hooks.log(`vmm lsp: an analysis worker stopped (${why}); its documents are analysed again on their next edit or request`);
    for (const uri of slot.uris) {
      this.homes.delete(uri);
      this.sent.delete(uri);
    }
    for (const [id, w] of this.waiting) if (w.slot === slot) w.settle({ type: 'failed', id, message: why });
  }

  private post(slot: Slot, m: ToWorker): void {
    slot.worker.postMessage(m);
  }
}
