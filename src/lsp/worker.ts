/**
 * The analysis worker (a `node:worker_threads` thread, started by ./workers.ts): it holds the text
 * of the large documents the server gives it, analyses each (parse + check + position index,
 * ./features.ts), posts the diagnostics of every analysed version and answers the requests on
 * those documents (./requests.ts), so that a 40k-line document never holds up the connection's
 * thread (issue #22).
 *
 * Work is done one unit at a time (one analysis, or one answer), with the messages that arrived
 * meanwhile read in between: a newer version replaces the text before it is analysed (only the
 * newest version is analysed), a cancelled request is dropped unanswered (the server has answered
 * it RequestCancelled), and requests wait only for the analysis of their own document.
 */
import { parentPort } from 'node:worker_threads';
import { TextDocument } from 'vscode-languageserver-textdocument';
import type { Diagnostic as LspDiagnostic } from 'vscode-languageserver';
import { analyze, lspDiagnostics, type Analysis } from './features.ts';
import { answer, type Feature, type ParamsOf } from './requests.ts';

/** What the server posts to a worker. */
export type ToWorker =
  | { type: 'text'; uri: string; version: number; text: string }
  | { type: 'close'; uri: string }
  | { type: 'request'; id: number; uri: string; feature: Feature; params: unknown }
  | { type: 'cancel'; id: number };

/** What a worker posts back. */
export type FromWorker =
  | { type: 'diagnostics'; uri: string; version: number; diagnostics: LspDiagnostic[] }
  | { type: 'answer'; id: number; result: unknown }
  | { type: 'failed'; id: number; message: string };

interface Doc {
  uri: string;
  version: number;
  text: string;
  /** The analysis of `version`, once made (an older one is dropped when a new text arrives). */
  analysis?: Analysis;
}

type Request = Extract<ToWorker, { type: 'request' }>;

const docs = new Map<string, Doc>();
const queue: Request[] = [];
let scheduled = false;

function post(m: FromWorker): void {
  parentPort!.postMessage(m);
}

function receive(m: ToWorker): void {
  switch (m.type) {
    case 'text':
      docs.set(m.uri, { uri: m.uri, version: m.version, text: m.text });
      break;
    case 'close':
      docs.delete(m.uri);
      break;
    case 'request':
      queue.push(m);
      break;
    case 'cancel': {
      const i = queue.findIndex((r) => r.id === m.id);
      if (i >= 0) queue.splice(i, 1);
      break;
    }
  }
  schedule();
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  // setImmediate, not a microtask: the messages already queued are read before the next unit.
  setImmediate(step);
}

function analysed(d: Doc): Analysis {
  const a = analyze(TextDocument.create(d.uri, 'vmm', d.version, d.text));
  d.analysis = a;
  post({ type: 'diagnostics', uri: d.uri, version: d.version, diagnostics: lspDiagnostics(a) });
  return a;
}

/** One unit of work: the oldest request's analysis or answer, else a document not yet analysed. */
function step(): void {
  scheduled = false;
  const r = queue[0];
  if (r) {
    const d = docs.get(r.uri);
    if (d && !d.analysis) {
      analysed(d);
    } else {
      queue.shift();
      try {
        post({ type: 'answer', id: r.id, result: answer(r.feature, d?.analysis, r.params as ParamsOf<Feature>) });
      } catch (e) {
        post({ type: 'failed', id: r.id, message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
      }
    }
  } else {
    const d = [...docs.values()].find((x) => !x.analysis);
    if (d) analysed(d);
  }
  if (queue.length || [...docs.values()].some((x) => !x.analysis)) schedule();
}

parentPort?.on('message', receive);
