/**
 * Chapter 5 (neurons and matrix multiplication): what its figures ask the engine worker. A weight matrix
 * of the loaded model (asked once per model and choice), and, per text, the Trace rows it multiplies and
 * the rows its product gave, so that the page can redo the product row by row and compare.
 */
import * as Comlink from 'comlink';
import { requireModel, traceFor } from '../../lib/worker/state.ts';
import { isMatrixName, MATRIX_ROLES, type MatrixName } from './neurons.ts';

export interface NeuronMatrix {
  layer: number;
  name: MatrixName;
  /** Output features (one per row) and input features (one per column): [rows, cols] as the model stores it. */
  rows: number;
  cols: number;
  /** A copy of the weights, row-major. */
  weights: Float32Array;
}

export interface NeuronVectors {
  /** The tokens of the pass these rows come from (as the page sent them). */
  tokens: number[];
  layer: number;
  name: MatrixName;
  /** The Trace's names of the input and output tensors, e.g. "layers[0].ffnNorm". */
  inputName: string;
  outputName: string;
  /** [T, cols]: the vector each token's row of the product multiplied. */
  inputs: Float32Array;
  /** [T, rows]: what the forward pass computed for each token (q, k and v flattened over heads). */
  outputs: Float32Array;
}

function checkChoice(layer: number, name: string): asserts name is MatrixName {
  const { model } = requireModel();
  if (!Number.isInteger(layer) || layer < 0 || layer >= model.config.nLayers) {
    throw new Error(`layer ${layer} does not exist: the model has ${model.config.nLayers} layers`);
  }
  if (!isMatrixName(name)) throw new Error(`no weight matrix is called ${name}`);
}

export const handlers = {
  /** The weight matrix `name` of layer `layer`, copied and transferred. */
  neuronMatrix(layer: number, name: MatrixName): NeuronMatrix {
    checkChoice(layer, name);
    const tensor = requireModel().model.weights.layers[layer][name];
    const [rows, cols] = tensor.shape;
    const weights = Float32Array.from(tensor.data);
    return Comlink.transfer({ layer, name, rows, cols, weights }, [weights.buffer]);
  },

  /** The Trace's input and output rows of that matrix's product, for every token of `tokens`. */
  neuronVectors(tokens: number[], layer: number, name: MatrixName): NeuronVectors {
    checkChoice(layer, name);
    const trace = traceFor(tokens);
    const role = MATRIX_ROLES[name];
    const inputs = Float32Array.from(trace.layers[layer][role.input].data);
    const outputs = Float32Array.from(trace.layers[layer][role.output].data);
    return Comlink.transfer(
      {
        tokens: [...tokens],
        layer,
        name,
        inputName: `layers[${layer}].${role.input}`,
        outputName: `layers[${layer}].${role.output}`,
        inputs,
        outputs,
      },
      [inputs.buffer, outputs.buffer],
    );
  },
};
