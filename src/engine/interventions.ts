/**
 * Interventions: ways to break the model on purpose and see what changes.
 *
 * `forward(…, { interventions })` applies each one at its place in the pass, between kernel calls, so the
 * readable kernels and the fast ones are intervened on alike, and the Trace records the changed tensors
 * (and the list itself, in `trace.interventions`) so a figure can say what was done.
 *
 *   patchResidual      the residual stream entering layer `layer` at one position is replaced by `value`
 *                      (taken from another run: activation patching); layer = nLayers patches the stream
 *                      after the last layer, just before the final RMSNorm
 *   overrideAttention  one query position's attention weights for one head are set by hand, then the head's
 *                      output for that position is recomputed from the values
 *   ablateHead         one head's output (its slice of attnOutput, before wo) is zeroed, or replaced at every
 *                      position by its mean over the pass's positions
 *   scaleNeuron        one entry of the SwiGLU activation (a "neuron" of the feed-forward block) is multiplied
 *                      by `factor` (0 silences it) at every position, or only at `positions`
 *
 * Positions are absolute (0 = the first token of the sequence). A pass only touches the positions it computes:
 * during decoding with a KV cache, an intervention at an earlier position already took effect when that
 * position was computed (its keys and values in the cache carry it).
 */
import { headDim, kvHeadOf, type ModelConfig } from './model.ts';
import { softmax } from './ops.ts';

export interface PatchResidual {
  kind: 'patchResidual';
  /** 0…nLayers−1: the stream entering that layer; nLayers: the stream after the last layer. */
  layer: number;
  position: number;
  /** The replacement vector, [dim]. */
  value: Float32Array;
}

export interface OverrideAttention {
  kind: 'overrideAttention';
  layer: number;
  head: number;
  /** The query position whose row of weights changes. */
  position: number;
  /** Key positions (each ≤ position) and the weight each gets. */
  set: readonly { key: number; weight: number }[];
  /**
   * true: the keys not named share what is left (1 − Σ set weights) in proportion to their own weights, so the
   * row still sums to 1 ("attend only to s" is set = [{ key: s, weight: 1 }]). false: the other weights stay
   * as the model computed them, and the row may no longer sum to 1.
   */
  renormalise: boolean;
}

export interface AblateHead {
  kind: 'ablateHead';
  layer: number;
  head: number;
  /** 'zero': the head adds nothing; 'mean': it adds the same (its average) output at every position. */
  mode: 'zero' | 'mean';
}

export interface ScaleNeuron {
  kind: 'scaleNeuron';
  layer: number;
  /** Index into the FFN's hidden width (0…hiddenDim−1). */
  neuron: number;
  factor: number;
  /** Absolute positions to scale at; every position when omitted. */
  positions?: readonly number[];
}

export type Intervention = PatchResidual | OverrideAttention | AblateHead | ScaleNeuron;

/** Throws a specific message for the first intervention that names something the model does not have. */
export function checkInterventions(config: ModelConfig, interventions: readonly Intervention[]): void {
  interventions.forEach((intervention, index) => {
    const fail = (problem: string) => {
      throw new Error(`forward: intervention ${index} (${intervention.kind}) ${problem}`);
    };
    const inRange = (what: string, value: number, count: number) => {
      if (!Number.isInteger(value) || value < 0 || value >= count)
        fail(`names ${what} ${value}, but the model has ${what}s 0…${count - 1}`);
    };
    const lastLayer = intervention.kind === 'patchResidual' ? config.nLayers + 1 : config.nLayers;
    inRange('layer', intervention.layer, lastLayer);
    switch (intervention.kind) {
      case 'patchResidual':
        inRange('position', intervention.position, config.seqLen);
        if (intervention.value.length !== config.dim)
          fail(`has a value of ${intervention.value.length} numbers; the stream is ${config.dim} wide`);
        break;
      case 'overrideAttention': {
        inRange('head', intervention.head, config.nHeads);
        inRange('position', intervention.position, config.seqLen);
        let total = 0;
        for (const { key, weight } of intervention.set) {
          if (!Number.isInteger(key) || key < 0 || key > intervention.position)
            fail(
              `sets key ${key}, but position ${intervention.position} sees keys 0…${intervention.position}`,
            );
          if (!Number.isFinite(weight) || weight < 0) fail(`sets weight ${weight}; weights are ≥ 0`);
          total += weight;
        }
        if (intervention.renormalise && total > 1 + 1e-6)
          fail(`sets weights summing to ${total}; to renormalise, they must sum to at most 1`);
        break;
      }
      case 'ablateHead':
        inRange('head', intervention.head, config.nHeads);
        break;
      case 'scaleNeuron':
        inRange('neuron', intervention.neuron, config.hiddenDim);
        if (!Number.isFinite(intervention.factor))
          fail(`has factor ${intervention.factor}; it must be finite`);
        for (const position of intervention.positions ?? []) inRange('position', position, config.seqLen);
        break;
    }
  });
}

/** The rows of a pass: positions startPos … startPos+T−1. */
export interface PassRows {
  startPos: number;
  T: number;
}

/** Row index of an absolute position in this pass, or −1 when the pass does not compute it. */
function rowOf(rows: PassRows, position: number): number {
  const row = position - rows.startPos;
  return row >= 0 && row < rows.T ? row : -1;
}

/** patchResidual: x is the stream [T, dim] entering `layer` (or leaving the last layer when layer = nLayers). */
export function patchResidual(
  x: Float32Array,
  layer: number,
  interventions: readonly Intervention[],
  rows: PassRows,
  dim: number,
): void {
  for (const intervention of interventions) {
    if (intervention.kind !== 'patchResidual' || intervention.layer !== layer) continue;
    const row = rowOf(rows, intervention.position);
    if (row >= 0) x.set(intervention.value, row * dim);
  }
}

/** Where attention's inputs and outputs are, for the interventions applied after the attention kernel. */
export interface AttentionState {
  config: ModelConfig;
  rows: PassRows;
  /** Queries after RoPE, [T, nHeads·headDim]. */
  queries: Float32Array;
  /** This layer of the KV cache ([positions, nKvHeads·headDim]), already holding the pass's keys/values. */
  keys: Float32Array;
  values: Float32Array;
  /** Attention's output, [T, nHeads·headDim] (changed in place). */
  output: Float32Array;
  /** The traced weights [nHeads, T, S] (changed in place so the Trace shows the override), when tracing. */
  tracedWeights?: Float32Array;
}

/**
 * overrideAttention, then ablateHead, for one layer: both change attention's output before wo mixes the
 * heads. The overridden row is recomputed here with the readable arithmetic of attention.ts (scores, softmax,
 * weighted sum of values), whichever kernel computed the rest.
 */
export function interveneOnAttention(
  layer: number,
  interventions: readonly Intervention[],
  state: AttentionState,
): void {
  for (const intervention of interventions) {
    if (intervention.layer !== layer) continue;
    if (intervention.kind === 'overrideAttention') overrideAttentionRow(intervention, state);
  }
  for (const intervention of interventions) {
    if (intervention.layer !== layer) continue;
    if (intervention.kind === 'ablateHead') ablateHead(intervention, state);
  }
}

function overrideAttentionRow(intervention: OverrideAttention, state: AttentionState): void {
  const { config, rows, queries, keys, values, output, tracedWeights } = state;
  const row = rowOf(rows, intervention.position);
  if (row < 0) return;
  const hd = headDim(config);
  const qDim = config.nHeads * hd;
  const kvDim = config.nKvHeads * hd;
  const kvHead = kvHeadOf(intervention.head, config.nHeads, config.nKvHeads);
  const visible = intervention.position + 1;
  const scale = 1 / Math.sqrt(hd);

  // The weights the model computed for this row …
  const weights = new Float32Array(visible);
  const qOffset = row * qDim + intervention.head * hd;
  for (let s = 0; s < visible; s++) {
    let dot = 0;
    for (let i = 0; i < hd; i++) dot += queries[qOffset + i] * keys[s * kvDim + kvHead * hd + i];
    weights[s] = dot * scale;
  }
  softmax(weights, visible);

  // … with the named keys set by hand, and the others rescaled to share what is left when renormalising.
  const named = new Set(intervention.set.map(({ key }) => key));
  if (intervention.renormalise) {
    const setTotal = intervention.set.reduce((sum, { weight }) => sum + weight, 0);
    let otherTotal = 0;
    for (let s = 0; s < visible; s++) if (!named.has(s)) otherTotal += weights[s];
    const share = otherTotal > 0 ? Math.max(0, 1 - setTotal) / otherTotal : 0;
    for (let s = 0; s < visible; s++) if (!named.has(s)) weights[s] *= share;
  }
  for (const { key, weight } of intervention.set) weights[key] = weight;

  const outOffset = row * qDim + intervention.head * hd;
  output.fill(0, outOffset, outOffset + hd);
  for (let s = 0; s < visible; s++) {
    for (let i = 0; i < hd; i++) output[outOffset + i] += weights[s] * values[s * kvDim + kvHead * hd + i];
  }
  if (tracedWeights) {
    const S = rows.startPos + rows.T;
    tracedWeights.set(weights, (intervention.head * rows.T + row) * S);
  }
}

function ablateHead(intervention: AblateHead, state: AttentionState): void {
  const { config, rows, output } = state;
  const hd = headDim(config);
  const qDim = config.nHeads * hd;
  const headStart = intervention.head * hd;
  const replacement = new Float32Array(hd); // zero, or the head's mean output over the pass's positions
  if (intervention.mode === 'mean') {
    for (let t = 0; t < rows.T; t++)
      for (let i = 0; i < hd; i++) replacement[i] += output[t * qDim + headStart + i];
    for (let i = 0; i < hd; i++) replacement[i] /= rows.T;
  }
  for (let t = 0; t < rows.T; t++) output.set(replacement, t * qDim + headStart);
}

/** scaleNeuron for one layer: activation is the SwiGLU output [T, hiddenDim], changed in place. */
export function scaleNeurons(
  activation: Float32Array,
  layer: number,
  interventions: readonly Intervention[],
  rows: PassRows,
  hiddenDim: number,
): void {
  for (const intervention of interventions) {
    if (intervention.kind !== 'scaleNeuron' || intervention.layer !== layer) continue;
    const positions = intervention.positions ?? Array.from({ length: rows.T }, (_, t) => rows.startPos + t);
    for (const position of positions) {
      const row = rowOf(rows, position);
      if (row >= 0) activation[row * hiddenDim + intervention.neuron] *= intervention.factor;
    }
  }
}

/**
 * One line saying what an intervention changes, for a figure's caption or a CLI's report. With the model's
 * layer count, a patch at layer nLayers is named for what it is: the stream after the last layer.
 */
export function describeIntervention(intervention: Intervention, nLayers?: number): string {
  switch (intervention.kind) {
    case 'patchResidual': {
      const where =
        intervention.layer === nLayers ? 'after the last layer' : `entering layer ${intervention.layer}`;
      return `the stream ${where} at position ${intervention.position} patched from another run`;
    }
    case 'overrideAttention': {
      const weights = intervention.set.map(({ key, weight }) => `${weight} on position ${key}`).join(', ');
      const rest = intervention.renormalise ? ', the rest rescaled to sum to 1' : '';
      return `head ${intervention.head} of layer ${intervention.layer}: position ${intervention.position} attends with ${weights}${rest}`;
    }
    case 'ablateHead':
      return `head ${intervention.head} of layer ${intervention.layer} ${intervention.mode === 'zero' ? 'zeroed' : 'replaced by its mean output'}`;
    case 'scaleNeuron': {
      const where = intervention.positions
        ? ` at position${intervention.positions.length === 1 ? '' : 's'} ${intervention.positions.join(', ')}`
        : '';
      return `neuron ${intervention.neuron} of layer ${intervention.layer} ×${intervention.factor}${where}`;
    }
  }
}
