/**
 * The language server keeps answering while a large document is analysed (issue #22): each test
 * runs `vmm lsp --stdio` as an editor would and checks the order in which answers come back, not
 * how long they take. A 40k-line document takes seconds to analyse on its worker thread; a hover
 * on another document, `shutdown` and a cancellation are answered before its diagnostics, and an
 * edited document's diagnostics are those of its latest version only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CancellationTokenSource,
  createProtocolConnection,
  DidChangeTextDocumentNotification,
  DidOpenTextDocumentNotification,
  DocumentSymbolRequest,
  ExitNotification,
  HoverRequest,
  InitializeRequest,
  PublishDiagnosticsNotification,
  SemanticTokensRequest,
  ShowMessageNotification,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  type Hover,
  type ProtocolConnection,
  type PublishDiagnosticsParams,
  type ShowMessageParams,
} from 'vscode-languageserver-protocol/node';
import { MAX_DOCUMENT_CHARS } from '../../src/lsp/features.ts';
import { WORKER_CHARS } from '../../src/lsp/server.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const VAE = readFileSync(join(ROOT, 'models', 'vae.vmm'), 'utf8');

/** models/vae.vmm with `n` constant declarations before its first data line. */
function bigModel(n: number): string {
  const lines = VAE.split('\n');
  const at = lines.findIndex((l) => l.startsWith('data'));
  return [...lines.slice(0, at), ...Array.from({ length: n }, (_, i) => `const C${i} = ${i}  // filler`), ...lines.slice(at)].join('\n');
}

const SMALL = 'const D = 4\ndata x : real[D]\n';
const BIG = 'file:///virtual/big.vmm';
const SMALL_URI = 'file:///virtual/small.vmm';

interface Server {
  child: ChildProcess;
  conn: ProtocolConnection;
  /** What came back, in order: `diagnostics <uri> <version>`, `message`, or a label given to `record`. */
  events: string[];
  published: PublishDiagnosticsParams[];
  messages: ShowMessageParams[];
  /** Resolves once an event matching `what` has been seen. */
  seen(what: (e: string) => boolean): Promise<void>;
  /** Labels a request's answer (or error) as an event when it arrives. */
  record<T>(label: string, p: Promise<T>): Promise<T>;
  open(uri: string, text: string, version?: number): Promise<void>;
}

let running: Server | undefined;

async function startServer(): Promise<Server> {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'vmm.mjs'), 'lsp', '--stdio'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const conn = createProtocolConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  const events: string[] = [];
  const published: PublishDiagnosticsParams[] = [];
  const messages: ShowMessageParams[] = [];
  let waiters: (() => boolean)[] = [];
  const note = (e: string) => {
    events.push(e);
    waiters = waiters.filter((w) => !w());
  };
  conn.onNotification(PublishDiagnosticsNotification.type, (p) => {
    published.push(p);
    note(`diagnostics ${p.uri} ${p.version}`);
  });
  conn.onNotification(ShowMessageNotification.type, (p) => {
    messages.push(p);
    note('message');
  });
  conn.listen();
  const seen = (what: (e: string) => boolean) =>
    new Promise<void>((resolve) => {
      const look = () => {
        const hit = events.some(what);
        if (hit) resolve();
        return hit;
      };
      if (!look()) waiters.push(look);
    });
  const record = <T>(label: string, p: Promise<T>) =>
    p.then(
      (v) => (note(label), v),
      (e: unknown) => {
        note(label);
        throw e;
      },
    );
  const open = (uri: string, text: string, version = 1) =>
    conn.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'vmm', version, text } });
  await conn.sendRequest(InitializeRequest.type, { processId: process.pid, rootUri: null, capabilities: {} });
  running = { child, conn, events, published, messages, seen, record, open };
  return running;
}

afterEach(() => {
  running?.conn.dispose();
  if (running?.child.exitCode === null) running.child.kill();
  running = undefined;
});

const diagnosticsOf = (uri: string, version?: number) => (e: string) => e === `diagnostics ${uri} ${version ?? 1}`;

describe('the language server while a large document is analysed', () => {
  it('answers a hover on another document and shutdown before the large document is analysed', async () => {
    const s = await startServer();
    await s.open(SMALL_URI, SMALL);
    await s.seen(diagnosticsOf(SMALL_URI));
    const big = bigModel(40_000);
    expect(big.length).toBeGreaterThan(WORKER_CHARS);
    await s.open(BIG, big);
    const hover = s.record('hover', s.conn.sendRequest(HoverRequest.type, { textDocument: { uri: SMALL_URI }, position: { line: 1, character: 5 } }));
    const shutdown = s.record('shutdown', s.conn.sendRequest(ShutdownRequest.type));
    expect(((await hover) as Hover).contents).toMatchObject({ value: expect.stringContaining('x : real[4]') });
    await shutdown;
    await s.seen(diagnosticsOf(BIG));
    // Both answers (shutdown's first: the hover yields to queued messages before it is answered), then the diagnostics.
    expect(s.events.filter((e) => !e.includes(SMALL_URI))).toEqual(['shutdown', 'hover', `diagnostics ${BIG} 1`]);
    const exited = new Promise<number | null>((resolve) => s.child.on('exit', resolve));
    await s.conn.sendNotification(ExitNotification.type);
    expect(await exited).toBe(0);
  }, 120_000);

  it('answers a request on the large document RequestCancelled as soon as it is cancelled', async () => {
    const s = await startServer();
    await s.open(SMALL_URI, SMALL);
    await s.open(BIG, bigModel(20_000));
    const cancel = new CancellationTokenSource();
    const tokens = s.record('cancelled', s.conn.sendRequest(SemanticTokensRequest.type, { textDocument: { uri: BIG } }, cancel.token));
    // The server reads messages in order: once this hover is answered, the request above waits on the worker.
    await s.record('hover', s.conn.sendRequest(HoverRequest.type, { textDocument: { uri: SMALL_URI }, position: { line: 1, character: 5 } }));
    cancel.cancel();
    await expect(tokens).rejects.toMatchObject({ code: -32800 });
    // The next request on that document is still answered, after its analysis.
    const again = s.record('tokens', s.conn.sendRequest(SemanticTokensRequest.type, { textDocument: { uri: BIG } }));
    expect(((await again) as { data: number[] }).data.length).toBeGreaterThan(20_000 * 5);
    expect(s.events.filter((e) => !e.includes(SMALL_URI))).toEqual(['hover', 'cancelled', `diagnostics ${BIG} 1`, 'tokens']);
  }, 120_000);

  it('publishes the diagnostics of an edited large document for its latest version only', async () => {
    const s = await startServer();
    const text = bigModel(20_000);
    await s.open(BIG, text);
    // Two edits while version 1 is analysed: an unknown name in version 2, another in version 3,
    // each a new line before the last (empty) line.
    const lastLine = text.split('\n').length - 1;
    const append = (version: number, line: string) =>
      s.conn.sendNotification(DidChangeTextDocumentNotification.type, {
        textDocument: { uri: BIG, version },
        contentChanges: [{ range: { start: { line: lastLine + version - 2, character: 0 }, end: { line: lastLine + version - 2, character: 0 } }, text: `${line}\n` }],
      });
    await append(2, 'const E2 = nowhere2');
    await append(3, 'const E3 = nowhere3');
    await s.seen(diagnosticsOf(BIG, 3));
    // A request on the document waits for its analysis, so anything still to come would have come.
    await s.conn.sendRequest(DocumentSymbolRequest.type, { textDocument: { uri: BIG } });
    const mine = s.published.filter((p) => p.uri === BIG);
    expect(mine.map((p) => p.version)).toEqual([3]);
    const unknown = mine[0]!.diagnostics.filter((d) => d.code === 'VMM2001').map((d) => d.range.start.line);
    expect(unknown).toEqual([lastLine, lastLine + 1]);
  }, 120_000);

  it('turns the heavy features off over the size limit, says so once and still publishes diagnostics', async () => {
    const s = await startServer();
    const filler = '// a comment line of filler text, repeated until the document is over the limit\n';
    const text = VAE + filler.repeat(Math.ceil((MAX_DOCUMENT_CHARS + 1) / filler.length));
    await s.open(BIG, text);
    await s.seen(diagnosticsOf(BIG, 1));
    expect(s.messages).toHaveLength(1);
    expect(s.messages[0]!.type).toBe(2); // a warning
    expect(s.messages[0]!.message).toContain("over the language server's limit");
    expect(await s.conn.sendRequest(SemanticTokensRequest.type, { textDocument: { uri: BIG } })).toEqual({ data: [] });
    expect(await s.conn.sendRequest(DocumentSymbolRequest.type, { textDocument: { uri: BIG } })).toEqual([]);
    // Hover still works: `dec` in `dec(z)`.
    const lines = VAE.split('\n');
    const line = lines.findIndex((l) => l.includes('dec(z)'));
    const h = (await s.conn.sendRequest(HoverRequest.type, { textDocument: { uri: BIG }, position: { line, character: lines[line]!.indexOf('dec(z)') } })) as Hover;
    expect(h.contents).toMatchObject({ value: expect.stringContaining('net dec') });
    // An edit that keeps it over the limit says nothing more.
    await s.conn.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri: BIG, version: 2 }, contentChanges: [{ text: text + filler }] });
    await s.seen(diagnosticsOf(BIG, 2));
    expect(s.messages).toHaveLength(1);
  }, 120_000);
});
