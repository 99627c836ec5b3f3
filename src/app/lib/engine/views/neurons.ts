/** Chapter 5 (neurons and matrix multiplication): what its figures ask the engine worker. */
export const neuronViews = {};
