/**
 * Labelled points on a canvas, as the embedding maps draw them (chapter 4's whole vocabulary, chapter 14's
 * map as it trains): a token's piece beside its point where it fits without covering a label already drawn,
 * and the point nearest the pointer, within a fingertip's reach on a touch screen.
 */
/** How near (CSS pixels) a point must be to the pointer to be read: a fingertip needs more room. */
export const REACH = { mouse: 12, touch: 28 };

/** How far from its point a label stands: `across` to either side, its middle `above` or `below`. */
export interface LabelGap {
  across: number;
  above: number;
  below: number;
}

/**
 * A labeller for one drawing: `label(x, y, text, strong)` writes `text` beside the point (x, y) at the first
 * free spot of four (right-above, left-above, right-below, left-below) between `left` and `right`, in a
 * halo of the figure's surface so that it reads over the points. A plain label that finds no free spot is
 * left out (the point is still drawn; hovering reads it); a strong one is bold and always drawn, at the
 * first spot if none is free, even past the edges.
 */
export function pointLabeller(
  {
    context,
    colour,
  }: {
    context: CanvasRenderingContext2D;
    /** A colour variable of the page, set on :root (Paint's colour, from canvas.svelte.ts). */
    colour(name: string): string;
  },
  { left: minLeft, right: maxRight }: { left: number; right: number },
  gap: LabelGap,
): (x: number, y: number, text: string, strong: boolean) => void {
  const placed: { left: number; top: number; right: number; bottom: number }[] = [];
  return (x, y, text, strong) => {
    context.font = `${strong ? '700 ' : ''}12px ui-monospace, Menlo, Consolas, monospace`;
    const w = context.measureText(text).width;
    const spots = [
      [x + gap.across, y - gap.above],
      [x - gap.across - w, y - gap.above],
      [x + gap.across, y + gap.below],
      [x - gap.across - w, y + gap.below],
    ].filter(([left]) => strong || (left >= minLeft && left + w <= maxRight));
    const box = (left: number, middle: number) => ({
      left,
      top: middle - 7,
      right: left + w,
      bottom: middle + 7,
    });
    const free = spots.find(([left, middle]) => {
      const b = box(left, middle);
      return !placed.some(
        (p) => b.left < p.right && p.left < b.right && b.top < p.bottom && p.top < b.bottom,
      );
    });
    const [left, middle] = free ?? (strong ? spots[0] : [NaN, NaN]);
    if (Number.isNaN(left)) return;
    placed.push(box(left, middle));
    context.textAlign = 'left';
    context.textBaseline = 'middle';
    context.lineWidth = 3;
    context.strokeStyle = colour('--surface');
    context.strokeText(text, left, middle);
    context.fillStyle = colour('--text');
    context.fillText(text, left, middle);
  };
}

/**
 * The index of the point nearest the pointer of `event` on `canvas`, of `count` points placed at `at(i)`
 * (CSS pixels on the canvas), or undefined if none is within REACH.
 */
export function nearestPoint(
  event: PointerEvent,
  canvas: HTMLCanvasElement,
  count: number,
  at: (i: number) => readonly [number, number],
): number | undefined {
  const box = canvas.getBoundingClientRect();
  const [px, py] = [event.clientX - box.left, event.clientY - box.top];
  let best: number | undefined;
  let bestDistance = (event.pointerType === 'mouse' ? REACH.mouse : REACH.touch) ** 2;
  for (let i = 0; i < count; i++) {
    const [x, y] = at(i);
    const d = (x - px) ** 2 + (y - py) ** 2;
    if (d < bestDistance) [bestDistance, best] = [d, i];
  }
  return best;
}
