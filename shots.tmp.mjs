import { chromium } from 'playwright-core';
import { mkdtempSync } from 'node:fs';
import { serve } from './src/app/serve.js';
const server = await serve({ dir: 'dist/app', port: 0, quiet: true });
const origin = server.url.replace(/\/$/, '');
const context = await chromium.launchPersistentContext(mkdtempSync('/tmp/s-'), { executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--headless'], viewport: { width: 1280, height: 900 } });
const page = await context.newPage();
page.on('console', (m) => { if (m.type() === 'error') console.log('console error', m.text()); });
await page.goto(origin + '/training');
await page.waitForTimeout(2500);
await page.screenshot({ path: '/tmp/shots/before-1280.png', fullPage: true });
const t0 = Date.now();
await page.getByRole('button', { name: 'Start', exact: true }).click();
const hook = () => page.evaluate(() => { const h = globalThis.__glassboxTrainer; return { phase: h.phase, step: h.step, samples: h.samples, losses: h.losses.slice(-1), val: h.valLosses.slice(-1), info: h.info }; });
for (let i = 0; i < 13; i++) {
  await page.waitForTimeout(10000);
  const h = await hook();
  console.log(((Date.now() - t0) / 1000).toFixed(0) + 's', h.phase, 'step', h.step, 'loss', h.losses, 'val', JSON.stringify(h.val), JSON.stringify(h.samples.at(-1)), JSON.stringify(h.info));
}
await page.screenshot({ path: '/tmp/shots/after-1280.png', fullPage: true });
await page.setViewportSize({ width: 375, height: 800 });
await page.waitForTimeout(500);
await page.screenshot({ path: '/tmp/shots/after-375.png', fullPage: true });
await context.close(); await server.close();
