/** Chapter 4 (embeddings): what its figures ask the engine worker. */
export const embeddingViews = {};
