/**
 * The registry of every diagnostic code with a one-line summary. Codes are stable: a code is never
 * reused for a different mistake. 1xxx syntax (reported by the parser, src/ast/parse.ts), 2xxx names,
 * types, shapes, distributions and the guide (src/check/), 3xxx training settings and the
 * constraints the lowering puts on an estimator. test/golden/ has a bad file for every code.
 */
/** The syntax codes (1xxx), reported by the parser (src/ast/parse.ts) and the AST builder. */
export const SYNTAX_CODES = {
  VMM1001: 'unexpected character: the text contains a character that starts no token',
  VMM1002: 'syntax error: unexpected token (the message says what was expected)',
  VMM1003: "missing closing ')', ']' or '}'",
  VMM1004: "statement not allowed here (e.g. 'observe' inside guide, a setting outside train)",
  VMM1005: 'an expression is too deep: a chain of more operations than the compiler nests (split it with `let`)',
  VMM1006: 'warning: a comment holds a bidirectional control character that can make the code read differently than it runs ("Trojan Source")',
} as const satisfies Record<string, string>;

const SEMANTIC_CODES = {
  // names and scopes
  VMM2001: 'unknown name (with a "did you mean" suggestion)',
  VMM2002: 'a name is used before its declaration',
  VMM2003: 'a name (or a guide / train block) is declared twice',
  VMM2004: 'a declaration uses the name of a builtin, distribution or layer',
  VMM2005: 'a name of the wrong kind used as a value (a net, a size symbol)',
  VMM2006: 'something that is not a net or builtin is applied (a distribution or layer inside an expression, data called as a function)',
  // consts and sizes
  VMM2010: 'not a compile-time constant expression',
  VMM2011: 'a size is not a positive whole number (or a division by zero)',
  VMM2012: 'a size is not linear in the size symbols (a product of two symbols, a division by a symbol)',
  VMM2013: 'a size symbol where a compile-time constant is required (consts, layer sizes, params)',
  // expressions
  VMM2020: 'operand shapes do not agree (elementwise ops, concat, stack, dot, @)',
  VMM2021: 'a categorical value used as a number',
  VMM2022: "a net applied to a value whose trailing shape is not the net's input shape",
  VMM2023: 'an entry read `t[i]` whose index is not a cat(N) over the first axis of `t`',
  VMM2024: 'wrong number or kind of arguments to a builtin or net',
  VMM2025: 'an operand has the wrong number of axes (a scalar indexed or concatenated, a 3-axis matmul)',
  // nets
  VMM2030: 'unknown layer in a net',
  VMM2031: 'wrong arguments to a layer',
  VMM2032: "a layer's input size does not match the previous stage's output",
  VMM2033: "a net's input shape cannot be inferred from its first stage",
  VMM2034: 'a convolution does not fit its input (not an image, wrong channels, kernel too large)',
  VMM2035: 'a reshape does not preserve the number of elements',
  VMM2036: "a net's `tap` or `skip` stage is invalid (a name given twice, a skip joining neither an image nor a vector, a net with skips used as a chain stage)",
  VMM2037: "a net's outputs or skip inputs misused (`.name` naming no tap of the net, a skip input missing, unknown, given twice or of the wrong shape)",
  // distributions
  VMM2040: 'unknown distribution',
  VMM2041: 'wrong arguments to a distribution (count, names)',
  VMM2042: 'a distribution parameter has the wrong type or shape (logits rank, odd Normal size, loc/scale shapes)',
  VMM2043: '`Categorical(E)` over something that is not a memory, param or size',
  VMM2044: "a site's declared type differs from its distribution's support",
  VMM2045: 'a distribution parameter written as a constant is outside its domain (a scale <= 0, a probability > 1)',
  VMM2046: "a guide site's distribution gives values outside the model site's support (a Normal guide for a Beta latent)",
  // sites
  VMM2050: 'an invalid combination of site keywords',
  VMM2051: '`discrete` on a continuous distribution',
  VMM2052: '`address` on a distribution other than Categorical',
  VMM2053: '`observe` of something that is not a data input',
  VMM2054: "the observed data's declared type does not match the distribution's support",
  VMM2055: 'a data input is observed twice',
  VMM2056: 'warning: the model reads data it observes (its bound is not a bound on the likelihood)',
  // the guide
  VMM2060: 'a latent of the model has no site in the guide',
  VMM2061: 'a guide site names no latent of the model',
  VMM2062: 'the guide samples a latent twice',
  VMM2063: "a guide site's type differs from the model's",
  VMM2064: 'the guide samples data',
  VMM2065: "the guide uses a model let, or a site it has not sampled yet",
  VMM2066: 'no default guide can be derived for the model',
  // declarations
  VMM2070: 'invalid param declaration (not real, unknown initializer)',
  VMM2071: 'invalid data / memory type (a memory without axes, `cat` without its number of categories)',
  // neural long-term memories (Titans), src/check/neural.ts
  VMM2090: 'a neural memory writes something that is not a declared `memory`',
  VMM2091: "a neural memory's key, value or gate net, or a read's key, does not fit the memory net or the memory's entries",
  VMM2092: "a neural memory's net is not an MLP, or its write rule has missing, unknown or invalid options",
  VMM2093: 'a neural memory is read outside an episode (as a stage of a net)',
  // warnings
  VMM2080: 'warning: a const, net, param, let or data input is never used',
  VMM2081: 'warning: a memory is never read by the model',
  // training settings and lowering constraints
  VMM3001: 'unknown training setting',
  VMM3002: 'a training setting is given twice',
  VMM3003: 'unknown estimator, optimizer, dataset or episodes form',
  VMM3004: 'unknown or positional argument of an estimator, optimizer or episodes',
  VMM3005: 'invalid value of a training setting (not a positive whole number, unknown baseline)',
  VMM3010: '`enumerate` needs exactly one discrete latent, a Categorical (an address)',
  VMM3011: '`soft` needs addresses, used only to read entries, and no other discrete latents',
  VMM3012: '`vimco` needs k >= 2',
  VMM3013: 'an address does not range over the entries of a memory or param',
  VMM3014: 'warning: an estimator for discrete latents on a model without any',
  VMM3015: '`iwae` on a model with discrete latents (their guide would get no gradient)',
  VMM3016: '`address = topk(...)` on a model without an address, or with an estimator that draws no addresses (enumerate, soft, relaxed)',
  VMM3020: 'the model cannot fit in memory at its training settings (a tensor too long for a backend, or too many bytes in all)',
  VMM3030: 'warning (error in `vmm train`): an input that training cannot bind (a second image input, a label input, a second memory)',
  VMM3031: "warning (error in `vmm train`): a memory whose entries do not have the shape of the data set's images",
  VMM3032: 'warning (error in `vmm train`): a size symbol that no memory binds',
  VMM3033: 'warning (error in `vmm train`): a model with nothing to learn (no net, no param)',
} as const satisfies Record<string, string>;

export const CODES: Record<string, { summary: string }> = Object.fromEntries(
  Object.entries({ ...SYNTAX_CODES, ...SEMANTIC_CODES }).map(([code, summary]) => [code, { summary }]),
);
