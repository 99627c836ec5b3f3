/** Chapter 3 (tokenization): what its figures ask the engine worker. */
export const tokenizationViews = {};
