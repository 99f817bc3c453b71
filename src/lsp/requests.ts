/**
 * The document requests the server answers, as one table from a request's name to its answer on an
 * analysed document. The server (./server.ts) answers small documents with it on the connection's
 * thread and the analysis worker (./worker.ts) large ones, so both give the same answer.
 */
import type {
  DocumentFormattingParams,
  DocumentSymbolParams,
  ReferenceParams,
  SemanticTokensParams,
  TextDocumentPositionParams,
} from 'vscode-languageserver';
import { completion, definition, documentSymbols, format, hover, references, semanticTokens, type Analysis } from './features.ts';

const offset = (a: Analysis, p: TextDocumentPositionParams) => a.doc.offsetAt(p.position);

interface FeatureEntry<P, R> {
  answer: (a: Analysis, params: P) => R;
  /** The answer for a document that is not open. */
  none: R;
}
const entry = <P, R>(answer: (a: Analysis, params: P) => R, none: R): FeatureEntry<P, R> => ({ answer, none });

/** Each request's answer on an analysed document. */
export const FEATURES = {
  hover: entry((a, p: TextDocumentPositionParams) => hover(a, offset(a, p)) ?? null, null),
  definition: entry((a, p: TextDocumentPositionParams) => definition(a, offset(a, p)) ?? null, null),
  references: entry((a, p: ReferenceParams) => references(a, offset(a, p), p.context.includeDeclaration), []),
  documentSymbol: entry((a, _p: DocumentSymbolParams) => documentSymbols(a), []),
  completion: entry((a, p: TextDocumentPositionParams) => completion(a, offset(a, p)), []),
  formatting: entry((a, _p: DocumentFormattingParams) => format(a), []),
  semanticTokens: entry((a, _p: SemanticTokensParams): { data: number[] } => ({ data: semanticTokens(a) }), { data: [] }),
};

type Features = typeof FEATURES;
export type Feature = keyof Features;
export type ParamsOf<F extends Feature> = Features[F] extends FeatureEntry<infer P, unknown> ? P : never;
export type ResultOf<F extends Feature> = Features[F] extends FeatureEntry<never, infer R> ? R : never;

/** The answer to request `feature` on `a` (the document's analysis), or its `none` when it is not open. */
export function answer<F extends Feature>(feature: F, a: Analysis | undefined, params: ParamsOf<F>): ResultOf<F> {
  const f = FEATURES[feature] as unknown as FeatureEntry<ParamsOf<F>, ResultOf<F>>;
  return a ? f.answer(a, params) : f.none;
}
