/**
 * `vmm lsp`: a Language Server Protocol server over stdio (vscode-languageserver). Every feature
 * is in ./features.ts as a function of the document's text; this module keeps the open documents,
 * analyses each version once (lazily, and at most every DEBOUNCE_MS while the user types) and
 * publishes the front end's diagnostics.
 */
import {
  createConnection,
  LSPErrorCodes,
  ProposedFeatures,
  ResponseError,
  StreamMessageWriter,
  TextDocuments,
  TextDocumentSyncKind,
  type CancellationToken,
  type Connection,
} from 'vscode-languageserver/node';
import { ResyncingMessageReader } from './framing.ts';
import { TextDocument } from 'vscode-languageserver-textdocument';
import {
  analyze,
  completion,
  definition,
  documentSymbols,
  format,
  hover,
  lspDiagnostics,
  references,
  semanticTokens,
  TOKEN_MODIFIERS,
  TOKEN_TYPES,
  type Analysis,
} from './features.ts';

/** How long the server waits after a change before re-checking (and publishing diagnostics). */
export const DEBOUNCE_MS = 150;

/**
 * A request handler that first lets the messages already received run (a `$/cancelRequest` for
 * this request, newer edits), then answers RequestCancelled if the client cancelled it: work the
 * client no longer wants is not done (issue #22).
 */
function cancellable<P, R>(handler: (params: P) => R): (params: P, token: CancellationToken) => Promise<R | ResponseError<void>> {
  return async (params, token) => {
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    if (token.isCancellationRequested) return new ResponseError(LSPErrorCodes.RequestCancelled, 'the request was cancelled');
    return handler(params);
  };
}

export function startServer(connection: Connection): void {
  const documents = new TextDocuments(TextDocument);
  const cache = new Map<string, Analysis>();
  const timers = new Map<string, NodeJS.Timeout>();

  /** The analysis of a document's current version (computed on demand, then cached). */
  const analysisOf = (uri: string): Analysis | undefined => {
    const doc = documents.get(uri);
    if (!doc) return undefined;
    const hit = cache.get(uri);
    if (hit && hit.doc.version === doc.version) return hit;
    const a = analyze(doc);
    cache.set(uri, a);
    return a;
  };

  const publish = (uri: string) => {
    timers.delete(uri);
    const a = analysisOf(uri);
    if (a) void connection.sendDiagnostics({ uri, version: a.doc.version, diagnostics: lspDiagnostics(a) });
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
    void connection.sendDiagnostics({ uri, diagnostics: [] });
  });

  const at = (uri: string, pos: { line: number; character: number }) => {
    const a = analysisOf(uri);
    return a ? { a, offset: a.doc.offsetAt(pos) } : undefined;
  };
  connection.onHover(cancellable((p) => {
    const x = at(p.textDocument.uri, p.position);
    return x ? (hover(x.a, x.offset) ?? null) : null;
  }));
  connection.onDefinition(cancellable((p) => {
    const x = at(p.textDocument.uri, p.position);
    return x ? (definition(x.a, x.offset) ?? null) : null;
  }));
  connection.onReferences(cancellable((p) => {
    const x = at(p.textDocument.uri, p.position);
    return x ? references(x.a, x.offset, p.context.includeDeclaration) : [];
  }));
  connection.onDocumentSymbol(cancellable((p) => {
    const a = analysisOf(p.textDocument.uri);
    return a ? documentSymbols(a) : [];
  }));
  connection.onCompletion(cancellable((p) => {
    const x = at(p.textDocument.uri, p.position);
    return x ? completion(x.a, x.offset) : [];
  }));
  connection.onDocumentFormatting(cancellable((p) => {
    const a = analysisOf(p.textDocument.uri);
    return a ? format(a) : [];
  }));
  connection.languages.semanticTokens.on(
    cancellable((p) => {
      const a = analysisOf(p.textDocument.uri);
      return { data: a ? semanticTokens(a) : [] };
    }),
  );

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
