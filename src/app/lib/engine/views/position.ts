/** Chapter 6 (position and RoPE): what its figures ask the engine worker. */
export const positionViews = {};
