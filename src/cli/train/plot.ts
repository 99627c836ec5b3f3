/**
 * A loss-curve plot as a standalone SVG: training loss (every logged step) and validation loss (where
 * measured) against the step, with labelled axes. Scales and ticks come from d3-scale.
 */
import { scaleLinear } from 'd3-scale';

export interface LossPoint {
  step: number;
  trainLoss?: number;
  valLoss?: number;
}

const WIDTH = 720;
const HEIGHT = 420;
const MARGIN = { top: 36, right: 24, bottom: 48, left: 60 };
// Okabe–Ito colours: distinguishable with the common kinds of colour blindness.
const TRAIN_COLOUR = '#0072B2';
const VAL_COLOUR = '#D55E00';

function escapeXml(text: string): string {
  return text.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}

export function lossPlotSvg(points: readonly LossPoint[], title: string): string {
  const losses = points
    .flatMap((p) => [p.trainLoss, p.valLoss])
    .filter((v): v is number => Number.isFinite(v));
  const steps = points.map((p) => p.step);
  const x = scaleLinear()
    .domain([Math.min(0, ...steps), Math.max(1, ...steps)])
    .range([MARGIN.left, WIDTH - MARGIN.right])
    .nice();
  const y = scaleLinear()
    .domain(losses.length ? [Math.min(...losses), Math.max(...losses)] : [0, 1])
    .range([HEIGHT - MARGIN.bottom, MARGIN.top])
    .nice();

  const path = (key: 'trainLoss' | 'valLoss') =>
    points
      .filter((p) => Number.isFinite(p[key]))
      .map((p, i) => `${i === 0 ? 'M' : 'L'}${x(p.step).toFixed(1)},${y(p[key]!).toFixed(1)}`)
      .join('');
  const xTicks = x
    .ticks(8)
    .map(
      (t) =>
        `<g transform="translate(${x(t).toFixed(1)},${HEIGHT - MARGIN.bottom})"><line y2="5" stroke="#555"/>` +
        `<text y="18" text-anchor="middle">${t}</text></g>`,
    );
  const yTicks = y
    .ticks(6)
    .map(
      (t) =>
        `<g transform="translate(${MARGIN.left},${y(t).toFixed(1)})"><line x2="${WIDTH - MARGIN.left - MARGIN.right}" stroke="#e5e5e5"/>` +
        `<text x="-8" dy="0.32em" text-anchor="end">${t}</text></g>`,
    );
  const last = points.at(-1);
  const summary = last
    ? `Final step ${last.step}: training loss ${last.trainLoss?.toFixed(3) ?? 'n/a'}, validation loss ${
        [...points]
          .reverse()
          .find((p) => Number.isFinite(p.valLoss))
          ?.valLoss?.toFixed(3) ?? 'n/a'
      }.`
    : 'No points yet.';

  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-labelledby="title desc" font-family="sans-serif" font-size="12">
<title id="title">${escapeXml(title)}</title>
<desc id="desc">${escapeXml(summary)}</desc>
<rect width="100%" height="100%" fill="#fff"/>
${yTicks.join('\n')}
${xTicks.join('\n')}
<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${HEIGHT - MARGIN.bottom}" y2="${HEIGHT - MARGIN.bottom}" stroke="#555"/>
<path d="${path('trainLoss')}" fill="none" stroke="${TRAIN_COLOUR}" stroke-width="1.5"/>
<path d="${path('valLoss')}" fill="none" stroke="${VAL_COLOUR}" stroke-width="2" stroke-dasharray="6 3"/>
<text x="${WIDTH / 2}" y="${HEIGHT - 10}" text-anchor="middle">step</text>
<text transform="translate(16,${HEIGHT / 2}) rotate(-90)" text-anchor="middle">cross-entropy loss (nats/token)</text>
<text x="${MARGIN.left}" y="20" font-size="14" font-weight="bold">${escapeXml(title)}</text>
<g transform="translate(${WIDTH - MARGIN.right - 200},${MARGIN.top})">
<line x2="24" stroke="${TRAIN_COLOUR}" stroke-width="1.5"/><text x="30" dy="0.32em">training loss</text>
<line y1="18" y2="18" x2="24" stroke="${VAL_COLOUR}" stroke-width="2" stroke-dasharray="6 3"/><text x="30" y="18" dy="0.32em">validation loss</text>
</g>
</svg>
`;
}
