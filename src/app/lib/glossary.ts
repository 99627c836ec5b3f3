/**
 * The course's vocabulary, in one place: each term a newcomer meets, a definition in plain words, and the
 * chapter that teaches it. The glossary page lists them all; a chapter marks the place where it first
 * defines a term with `<Term id="…">` (lib/components/Term.svelte), which is where the glossary links to
 * (`/<chapter>#term-<id>`). A test checks that every entry's chapter has that mark.
 */

export interface GlossaryEntry {
  /** The term as a reader sees it. */
  term: string;
  /** One or two sentences, plain words, no forward references the reader cannot follow. */
  definition: string;
  /** The slug of the chapter whose page defines it (it holds `<Term id=…>`). */
  chapter: string;
  /** A later written chapter that takes it apart in depth, if any. */
  also?: string;
}

export const GLOSSARY = {
  token: {
    term: 'token',
    definition:
      'A piece of text the model reads as one unit: a whole word with its space, a part of a word, or a single byte. Each has an integer id.',
    chapter: 'whole-machine',
  },
  tensor: {
    term: 'tensor',
    definition:
      'A table of numbers with any number of dimensions. Its shape lists the size of each, e.g. [T, 64]: T rows (one per token) of 64 numbers.',
    chapter: 'whole-machine',
  },
  vocabulary: {
    term: 'vocabulary',
    definition:
      'The list of every token a model knows, each with its id. The model scores all of them to choose the next one.',
    chapter: 'whole-machine',
  },
  block: {
    term: 'block (layer)',
    definition:
      'One repeated stage of the model: an attention step, in which tokens read each other, then a feed-forward step, in which each token is transformed on its own. A model stacks several identical-shaped blocks.',
    chapter: 'whole-machine',
  },
  attention: {
    term: 'attention',
    definition:
      'The step in which each token gathers information from the tokens before it, weighting each by how well its query matches their keys.',
    chapter: 'whole-machine',
  },
  head: {
    term: 'head (attention head)',
    definition:
      'One of several attentions that run side by side in a block, each on its own slice of the vector, so that each can look for something different.',
    chapter: 'whole-machine',
  },
  gqa: {
    term: 'grouped-query attention (GQA)',
    definition:
      'Attention in which several query heads share one key head and one value head, which saves memory when generating; the key/value heads are fewer than the query heads.',
    chapter: 'whole-machine',
  },
  rope: {
    term: 'RoPE (rotary position embedding)',
    definition:
      'How the model knows where each token stands: each query and key is cut into pairs of numbers, and each pair is turned by an angle that grows with the position.',
    chapter: 'whole-machine',
    also: 'position',
  },
  swiglu: {
    term: 'SwiGLU',
    definition:
      'The feed-forward step of Llama-style models: one matrix product, passed through the SiLU function, scales a second product number by number.',
    chapter: 'whole-machine',
    also: 'feed-forward',
  },
  rmsnorm: {
    term: 'RMSNorm',
    definition:
      'A rescaling of a vector so that its numbers have a root-mean-square of 1, then multiplied by learned weights; it keeps the numbers at a steady size from block to block.',
    chapter: 'whole-machine',
    also: 'residual-stream',
  },
  logits: {
    term: 'logits',
    definition:
      'The raw scores the model gives every token of the vocabulary, one row per position; higher means more likely next. Softmax turns them into probabilities.',
    chapter: 'whole-machine',
  },
  softmax: {
    term: 'softmax',
    definition:
      'The function that turns scores into probabilities: raise e to each score, then divide by the sum, so every value is positive and they add up to 1.',
    chapter: 'whole-machine',
  },
  temperature: {
    term: 'temperature',
    definition:
      'A number the logits are divided by before softmax: below 1 it sharpens the distribution towards the likeliest tokens, above 1 it flattens it.',
    chapter: 'whole-machine',
    also: 'sampling',
  },
  codePoint: {
    term: 'code point',
    definition:
      'The number Unicode gives a character, written like U+00E9. What looks like one character may be several code points (an emoji with a skin tone is two).',
    chapter: 'text-to-bytes',
  },
  utf8: {
    term: 'UTF-8',
    definition:
      'The usual way to write code points as bytes: one byte for plain ASCII, two, three or four for larger code points.',
    chapter: 'text-to-bytes',
  },
  bpe: {
    term: 'byte-pair encoding (BPE)',
    definition:
      'How a tokenizer learns its vocabulary: start from the 256 byte values and repeatedly make the most frequent adjacent pair a new token.',
    chapter: 'text-to-bytes',
    also: 'tokenization',
  },
  preTokenizer: {
    term: 'pre-tokenizer',
    definition:
      'The rule (a regular expression) that cuts text into words before BPE; merges never cross from one word into the next.',
    chapter: 'tokenization',
  },
  embedding: {
    term: 'embedding',
    definition:
      'The vector a token starts as: its row of the embedding table, one row per token of the vocabulary, learned in training.',
    chapter: 'whole-machine',
    also: 'embeddings',
  },
  cosine: {
    term: 'cosine similarity',
    definition:
      'How nearly two vectors point the same way: their dot product divided by both lengths; 1 for the same direction, 0 at right angles, −1 for opposite.',
    chapter: 'embeddings',
  },
  pca: {
    term: 'principal component analysis (PCA)',
    definition:
      'A way to flatten many dimensions into a few: find the directions along which the data spreads most, and keep the coordinates along them.',
    chapter: 'embeddings',
  },
  tied: {
    term: 'tied embeddings',
    definition:
      'Using the same table twice: its rows are the tokens’ starting vectors and also score every token at the output.',
    chapter: 'embeddings',
  },
  neuron: {
    term: 'neuron',
    definition:
      'Multiply each input by a weight, add them up with a bias, and pass the sum through an activation function.',
    chapter: 'neurons',
  },
  activation: {
    term: 'activation function',
    definition:
      'The fixed bend applied to a neuron’s sum (ReLU, GELU, SiLU); without it, stacked layers would collapse into one straight-line function.',
    chapter: 'neurons',
  },
  matvec: {
    term: 'matrix × vector product',
    definition:
      'Many neurons at once: each output is one row of the matrix multiplied, number by number, with the vector and added up.',
    chapter: 'neurons',
  },
  trace: {
    term: 'the Trace',
    definition:
      'The engine’s record of one forward pass over your text: every intermediate table of numbers, under a name such as layers[0].ffnNorm. The figures read their numbers from it.',
    chapter: 'neurons',
  },
  kernels: {
    term: 'kernels',
    definition:
      'The small, fast routines that do the heavy arithmetic (matrix products): here WebAssembly builds, or the readable TypeScript reference they are tested against.',
    chapter: 'neurons',
  },
  float32: {
    term: 'float32',
    definition:
      'The 32-bit floating-point numbers the model computes in: about seven significant digits, so sums added in a different order can differ in the last digits.',
    chapter: 'neurons',
  },
  queryKey: {
    term: 'query and key',
    definition:
      'The two vectors attention compares: each token sends out a query and offers a key; the dot product of a query with a key scores how much the first token looks at the second.',
    chapter: 'position',
  },
  causalMask: {
    term: 'causal mask',
    definition: 'The rule that a token may read only itself and the tokens before it, never the ones after.',
    chapter: 'position',
    also: 'attention',
  },
  sqrtD: {
    term: '√d (score scale)',
    definition:
      'Attention divides each query–key score by the square root of the head’s width d, so that wide vectors do not give ever larger scores.',
    chapter: 'position',
    also: 'attention',
  },
  value: {
    term: 'value',
    definition:
      'The third vector attention computes for each token, beside its query and key: what the token hands over when another token reads it. A head’s output is a weighted average of values.',
    chapter: 'attention',
  },
  attentionWeights: {
    term: 'attention weights',
    definition:
      'The softmax of one query’s scores: how much the token reads each token up to itself. Each row is positive and adds up to 1; keys after the token get exactly 0.',
    chapter: 'attention',
  },
  intervention: {
    term: 'intervention',
    definition:
      'A change made on purpose inside a forward pass (an attention row set by hand, a head silenced), after which the engine computes the rest of the pass as usual, to see what the changed part was doing.',
    chapter: 'attention',
  },
  previousTokenHead: {
    term: 'previous-token head',
    definition:
      'An attention head that puts most of each token’s weight on the token just before it, so that later layers know what came before each token.',
    chapter: 'heads',
  },
  attentionSink: {
    term: 'attention sink',
    definition:
      'A token (usually the first) on which heads park the attention they have no use for: softmax makes every row of weights sum to 1, so the weight has to go somewhere.',
    chapter: 'heads',
  },
  inductionHead: {
    term: 'induction head',
    definition:
      'A head that, from the current token, attends to the token that followed an earlier copy of it, so the model can repeat what came next last time.',
    chapter: 'heads',
  },
  kvCache: {
    term: 'KV cache',
    definition:
      'The keys and values of every earlier position, kept while generating so that each new token does not recompute them: 2 × layers × key/value heads × head size numbers per position.',
    chapter: 'heads',
    also: 'generation',
  },
  ablation: {
    term: 'ablation',
    definition:
      'Removing one part of a model on purpose (a head, a neuron) and measuring what gets worse, to learn what that part does.',
    chapter: 'heads',
  },
  residualStream: {
    term: 'residual stream',
    definition:
      'The one vector per token that runs through the whole model: each attention and feed-forward block reads it (normalized) and adds its result to it, so nothing a block writes is thrown away.',
    chapter: 'residual-stream',
  },
  logitLens: {
    term: 'logit lens',
    definition:
      'Reading the residual stream between two layers as if it were the last: the final RMSNorm and the classifier turn it into a next-token distribution, which shows what the model would predict at that depth.',
    chapter: 'residual-stream',
  },
  contextualEmbedding: {
    term: 'contextual embedding',
    definition:
      'A token’s vector after some layers: unlike its row of the embedding table, which is the same wherever the token stands, it depends on the tokens around it.',
    chapter: 'residual-stream',
  },
  hiddenWidth: {
    term: 'hidden width',
    definition:
      'The number of neurons in a feed-forward block, the width its gate and up projections widen the stream to before the down projection narrows it back: three times the model’s width here, 8/3 in Llama’s rule.',
    chapter: 'feed-forward',
  },
  keyValueMemory: {
    term: 'key–value memory',
    definition:
      'A way to read a feed-forward neuron: its rows of the gate and up matrices are a key that matches some streams, and its column of the down matrix is the value it then adds, which raises the scores of some next tokens and lowers others.',
    chapter: 'feed-forward',
  },
  greedy: {
    term: 'greedy decoding',
    definition:
      'Always taking the single most likely next token, with no randomness: temperature 0. The same text always gives the same continuation.',
    chapter: 'sampling',
  },
  topK: {
    term: 'top-k',
    definition:
      'A sampling filter: keep only the k most likely tokens, then draw among them. 0 turns it off.',
    chapter: 'sampling',
  },
  minP: {
    term: 'min-p',
    definition:
      'A sampling filter: keep the tokens whose probability is at least min-p times that of the most likely one. 0 turns it off.',
    chapter: 'sampling',
  },
  topP: {
    term: 'top-p (nucleus sampling)',
    definition:
      'A sampling filter: keep the fewest most likely tokens whose probabilities add up to more than p, then draw among them. 0 or 1 turns it off.',
    chapter: 'sampling',
  },
  renormalise: {
    term: 'renormalise',
    definition:
      'Divide the probabilities that survive a filter by their sum, so they add up to 1 again: each survivor keeps its share, relative to the others.',
    chapter: 'sampling',
  },
  seed: {
    term: 'seed',
    definition:
      'The number a pseudo-random generator starts from. The same seed gives the same sequence of random numbers, so the same draws.',
    chapter: 'sampling',
  },
  autoregressive: {
    term: 'autoregressive',
    definition:
      'Writing one token at a time, each chosen from a distribution computed over all the tokens before it, including those the model wrote itself.',
    chapter: 'generation',
  },
  prefill: {
    term: 'prefill and decode',
    definition:
      'Prefill reads the whole prompt in one pass and fills the KV cache; each decode step then reads a single new token and adds one row per layer.',
    chapter: 'generation',
  },
  stopToken: {
    term: 'stop token',
    definition:
      'A token that ends generation when it is sampled, such as the end-of-text or start-of-text token; it is not shown.',
    chapter: 'generation',
  },
  surprise: {
    term: 'surprise (−log p)',
    definition:
      'How unexpected a token was to the model: −ln of the probability it gave that token. 0 means certain; each extra nat means e times less likely.',
    chapter: 'generation',
  },
  perplexity: {
    term: 'perplexity',
    definition:
      'e to the mean surprise of a text’s tokens: the number of equally likely choices the model’s average uncertainty amounts to. Lower means the text is more predictable to the model.',
    chapter: 'generation',
  },
  arithmeticIntensity: {
    term: 'arithmetic intensity',
    definition:
      'Floating-point operations a computation does per byte it reads from memory. Low (a decode step: about 0.5 in float32) means it waits for memory; high (a long prefill) means it waits for the processor.',
    chapter: 'inference',
  },
  roofline: {
    term: 'roofline',
    definition:
      'A chart of the speed a computation can reach against its arithmetic intensity: the lower of the processor’s peak FLOP/s and the memory bandwidth × the intensity.',
    chapter: 'inference',
  },
  pagedCache: {
    term: 'paged KV cache',
    definition:
      'A KV cache kept in fixed-size blocks taken from one shared pool as a sequence grows, with a block table per sequence, so memory follows the tokens held and sequences can share blocks (vLLM’s PagedAttention).',
    chapter: 'inference',
  },
  copyOnWrite: {
    term: 'copy-on-write',
    definition:
      'Sharing one copy of data between several users until one of them writes to it; only then does that user get its own copy.',
    chapter: 'inference',
  },
  batching: {
    term: 'batching',
    definition:
      'Running several sequences through the model in one pass, so each weight read from memory serves all of them. Continuous batching lets sequences join and leave between steps.',
    chapter: 'inference',
  },
  throughput: {
    term: 'throughput and latency',
    definition:
      'Throughput is how many tokens a system produces per second in all; latency is how long one request waits for its next token. Batching raises the first at the price of the second.',
    chapter: 'inference',
  },
  speculativeDecoding: {
    term: 'speculative decoding',
    definition:
      'A small draft model guesses the next few tokens and the large model checks them all in one pass, keeping the guesses it agrees with; the text is the one the large model alone would write.',
    chapter: 'inference',
  },
  crossEntropy: {
    term: 'cross-entropy loss',
    definition:
      'The number training lowers: the mean over a text’s positions of −ln p(the token that came next). The same as the mean surprise.',
    chapter: 'learning',
  },
  gradient: {
    term: 'gradient',
    definition:
      'For every weight, how fast the loss changes when that weight alone is nudged: ∂L/∂w. Stepping each weight against its gradient lowers the loss.',
    chapter: 'learning',
  },
  finiteDifference: {
    term: 'finite difference',
    definition:
      'A gradient measured by brute force: run the model with one weight nudged up by h and down by h, and divide the change in loss by 2h.',
    chapter: 'learning',
  },
  backpropagation: {
    term: 'backpropagation',
    definition:
      'Computing every weight’s gradient in one backward pass: the chain rule applied op by op from the loss back to the input, each op turning the gradient of its output into gradients of its inputs and weights.',
    chapter: 'learning',
  },
  learningRate: {
    term: 'learning rate',
    definition:
      'How big a step an optimiser takes: SGD moves each weight by the learning rate times its gradient; Adam moves it by about the learning rate.',
    chapter: 'learning',
  },
  optimiser: {
    term: 'optimiser',
    definition:
      'The rule that turns gradients into weight updates: plain SGD, SGD with momentum, Adam (a step per weight scaled by its recent gradients), AdamW (Adam plus a decay of the weights).',
    chapter: 'learning',
  },
  lossLandscape: {
    term: 'loss landscape',
    definition:
      'The loss as a function of the weights. Too many dimensions to draw, it is shown on a plane through the trained weights spanned by two random directions.',
    chapter: 'learning',
  },
  quantization: {
    term: 'quantization',
    definition:
      'Storing a model’s weights in fewer bits than float32’s 32: as 16-bit floats, or as small integers with a shared scale per group. The model gets smaller and faster to read, and each weight a little less exact.',
    chapter: 'quantization',
  },
  float16: {
    term: 'float16 and bfloat16',
    definition:
      'Two 16-bit float formats. float16 keeps 5 exponent bits and 10 fraction bits (more digits, a range up to 65,504); bfloat16 keeps float32’s 8 exponent bits and only 7 fraction bits (float32’s range, fewer digits).',
    chapter: 'quantization',
  },
  quantGroup: {
    term: 'group (block) and scale',
    definition:
      'In integer quantization, a run of consecutive weights (32 in llama.cpp’s q8_0 and q4_0) that share one scale: each weight is stored as a small integer q and read back as scale × q (plus a minimum, in q4_1).',
    chapter: 'quantization',
  },
  outlierWeight: {
    term: 'outlier (weight)',
    definition:
      'A weight far larger in size than its neighbours. In a group it sets the scale, so the ordinary weights around it share a few coarse levels and lose precision.',
    chapter: 'quantization',
  },
  validationLoss: {
    term: 'validation loss',
    definition:
      'The loss on text held out from training: the model never learns from it, so it measures what the model learned in general rather than what it memorised.',
    chapter: 'training',
  },
  overfitting: {
    term: 'overfitting',
    definition:
      'When a model keeps lowering its training loss by memorising its training text while its validation loss stops falling or rises.',
    chapter: 'training',
  },
  dataParallelism: {
    term: 'data parallelism',
    definition:
      'Training on several threads or machines at once by cutting each batch into shards: each computes its shard’s gradient, and their average is the batch’s.',
    chapter: 'training',
  },
  checkpoint: {
    term: 'checkpoint',
    definition:
      'A saved copy of a training run: the weights, the optimiser’s state and where the data stream was, enough to continue exactly where it stopped.',
    chapter: 'training',
  },
  fineTuning: {
    term: 'fine-tuning',
    definition:
      'Training an already trained model a little further, on new text, with a small learning rate: it keeps most of what it knew and takes on the new text’s style.',
    chapter: 'training',
  },
  timeMachine: {
    term: 'time-machine',
    definition:
      'The house model as it was at an earlier step of its training, loaded from a checkpoint its run kept: choose a step and every chapter’s figures run on that model, to watch what training built and when.',
    chapter: 'training',
  },
} satisfies Record<string, GlossaryEntry>;

export type TermId = keyof typeof GLOSSARY;

/** The entries in alphabetical order of their terms (ignoring case and symbols), for the glossary page. */
export function glossaryEntries(): [TermId, GlossaryEntry][] {
  const key = (term: string) => term.replace(/^(the |√)/i, '').toLowerCase();
  return (Object.entries(GLOSSARY) as [TermId, GlossaryEntry][]).sort(([, a], [, b]) =>
    key(a.term).localeCompare(key(b.term), 'en'),
  );
}

/** The element id that marks where a chapter defines `id`. */
export function termAnchor(id: TermId): string {
  return `term-${id}`;
}
