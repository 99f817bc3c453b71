/**
 * `vmm lsp`: a Language Server Protocol server over stdio (vscode-languageserver). Every feature
 * is in ./features.ts as a function of the document's text (./requests.ts maps requests to them);
 * this module keeps the open documents, analyses each version once (lazily, and at most every
 * DEBOUNCE_MS while the user types) and publishes the front end's diagnostics.
 *
 * A document over WORKER_CHARS is analysed and answered on a worker thread (./workers.ts,
 * ./worker.ts), so the connection's thread never waits for it (issue #22): requests on other
 * documents, `shutdown`, `exit` and `$/cancelRequest` are answered while it is analysed, and only
 * requests on that document wait for its analysis. Diagnostics are published for the current
 * version only; an older version analysed meanwhile is dropped.
 */
import {
  createConnection,
  LSPErrorCodes,
  MessageType,
  ProposedFeatures,
  ResponseError,
  ShowMessageNotification,
  StreamMessageWriter,
  TextDocuments,
  TextDocumentSyncKind,
  type CancellationToken,
  type Connection,
  type TextDocumentIdentifier,
} from 'vscode-languageserver/node';
import { ResyncingMessageReader } from './framing.ts';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { analyze, lspDiagnostics, MAX_DOCUMENT_CHARS, tooLargeMessage, TOKEN_MODIFIERS, TOKEN_TYPES, type Analysis } from './features.ts';
import { answer, type Feature, type ParamsOf, type ResultOf } from './requests.ts';
import { AnalysisWorkers } from './workers.ts';

/** How long the server waits after a change before re-checking (and publishing diagnostics). */
export const DEBOUNCE_MS = 150;

/**
 * Documents larger than this (64 Ki characters, some 2k lines) are analysed on a worker thread:
 * below it the front end takes tens of milliseconds, less than a message to a worker and back is
 * worth; above it, up to seconds (2.5 s at 40k lines) that the connection would be deaf for.
 * Once on a worker, a document stays there until closed.
 */
export const WORKER_CHARS = 64 * 1024;

export function startServer(connection: Connection): void {
  const documents = new TextDocuments(TextDocument);
  const cache = new Map<string, Analysis>();
  const timers = new Map<string, NodeJS.Timeout>();
  /** Documents over MAX_DOCUMENT_CHARS whose user has been told (once) what is off for them. */
  const told = new Set<string>();
  const workers = new AnalysisWorkers({
    current: (uri) => {
      const doc = documents.get(uri);
      return doc && { version: doc.version, text: doc.getText() };
    },
    diagnostics: (uri, version, diagnostics) => {
      if (documents.get(uri)?.version === version) void connection.sendDiagnostics({ uri, version, diagnostics });
    },
    log: (message) => connection.console.error(message),
  });
  const onWorker = (doc: TextDocument) => workers.holds(doc.uri) || doc.getText().length > WORKER_CHARS;

  /** The analysis of a (small) document's current version (computed on demand, then cached). */
  const analysisOf = (uri: string): Analysis | undefined => {
    const doc = documents.get(uri);
    if (!doc) return undefined;
    const hit = cache.get(uri);
    if (hit && hit.doc.version === doc.version) return hit;
    const a = analyze(doc);
    cache.set(uri, a);
    return a;
  };

  const tellIfTooLarge = (doc: TextDocument) => {
    const chars = doc.getText().length;
    if (chars <= MAX_DOCUMENT_CHARS) told.delete(doc.uri);
    else if (!told.has(doc.uri)) {
      told.add(doc.uri);
      // A notification (window/showMessage), not connection.window's request, which wants an answer.
      void connection.sendNotification(ShowMessageNotification.type, { type: MessageType.Warning, message: tooLargeMessage(doc.uri, chars) });
    }
  };

  const publish = (uri: string) => {
    clearTimeout(timers.get(uri));
    timers.delete(uri);
    const doc = documents.get(uri);
    if (!doc) return;
    tellIfTooLarge(doc);
    if (onWorker(doc)) {
      // Its worker publishes the diagnostics (the `diagnostics` hook above).
      cache.delete(uri);
      workers.sync(uri);
      return;
    }
    const a = analysisOf(uri);
    if (a) void connection.sendDiagnostics({ uri, version: a.doc.version, diagnostics: lspDiagnostics(a) });
  };

  /**
   * The handler of a document request. It first lets the messages already received run (a
   * `$/cancelRequest` for this request, newer edits) and answers RequestCancelled if the client
   * cancelled it; then a small document is answered here, a large one by its worker.
   */
  const serve =
    <F extends Feature>(feature: F) =>
    async (params: ParamsOf<F> & { textDocument: TextDocumentIdentifier }, token: CancellationToken): Promise<ResultOf<F> | ResponseError<void>> => {
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      if (token.isCancellationRequested) return new ResponseError(LSPErrorCodes.RequestCancelled, 'the request was cancelled');
      const uri = params.textDocument.uri;
      const doc = documents.get(uri);
      if (doc && onWorker(doc)) return workers.request(uri, feature, params, token);
      return answer(feature, analysisOf(uri), params);
    };

  connection.onInitialize(() => ({
    capabilities: {
      textDocumentSync: TextDocumentSyncKind.Incremental,
      hoverProvider: true,
      definitionProvider: true,
      referencesProvider: true,
      documentSymbolProvider: true,
      documentFormattingProvider: true,
      completionProvider: { triggerCharacters: ['~', '>', ':', '('] },
      semanticTokensProvider: { legend: { tokenTypes: [...TOKEN_TYPES], tokenModifiers: [...TOKEN_MODIFIERS] }, full: true },
    },
    serverInfo: { name: 'vmm', version: '0.1.0' },
  }));

  documents.onDidOpen((e) => publish(e.document.uri));
  documents.onDidChangeContent((e) => {
    const uri = e.document.uri;
    clearTimeout(timers.get(uri));
    timers.set(uri, setTimeout(() => publish(uri), DEBOUNCE_MS));
  });
  documents.onDidClose((e) => {
    const uri = e.document.uri;
    clearTimeout(timers.get(uri));
    timers.delete(uri);
    cache.delete(uri);
    told.delete(uri);
    workers.close(uri);
    void connection.sendDiagnostics({ uri, diagnostics: [] });
  });

  connection.onHover(serve('hover'));
  connection.onDefinition(serve('definition'));
  connection.onReferences(serve('references'));
  connection.onDocumentSymbol(serve('documentSymbol'));
  connection.onCompletion(serve('completion'));
  connection.onDocumentFormatting(serve('formatting'));
  connection.languages.semanticTokens.on(serve('semanticTokens'));

  documents.listen(connection);
  connection.listen();
}

/**
 * Runs the server on stdin / stdout until the client disconnects. Malformed input is skipped (and
 * logged on stderr) rather than leaving the server deaf (./framing.ts); when stdin ends, the
 * process exits (code 0 after a `shutdown` request, else 1), as the specification asks.
 */
export function runStdioServer(): Promise<void> {
  const reader = new ResyncingMessageReader(process.stdin, (why) => process.stderr.write(`vmm lsp: skipped malformed input: ${why}\n`));
  const connection = createConnection(ProposedFeatures.all, reader, new StreamMessageWriter(process.stdout));
  let shutdown = false;
  connection.onShutdown(() => {
    shutdown = true;
  });
  reader.onClose(() => process.exit(shutdown ? 0 : 1));
  startServer(connection);
  return new Promise((resolve) => connection.onExit(() => resolve()));
}
