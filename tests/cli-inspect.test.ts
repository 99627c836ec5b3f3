/** `glassbox inspect`: the dispatcher's own errors (each view's numbers are tested in cli-inspect-<view>.test.ts). */
import { describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.ts';

describe('glassbox inspect', () => {
  it.each([
    [['inspect'], /inspect needs a view first/],
    [['inspect', '--model', 'm.bin'], /inspect needs a view first/],
    [['inspect', 'everything', '--model', 'm.bin'], /unknown inspect view "everything": choose one of/],
  ])('%j is a usage error on one line, with the usage after it', async (args, message) => {
    const result = await runCli(args);
    expect(result.code).toBe(2);
    const [firstLine] = result.stderr.split('\n');
    expect(firstLine).toMatch(message);
    expect(result.stderr).toContain('Usage: glassbox <command>');
    expect(result.stderr).not.toMatch(/\bat .*\.ts:\d+/); // no stack trace
  });

  it('--help prints the usage, which lists the command', async () => {
    const result = await runCli(['inspect', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toMatch(/inspect {4}Print what a chapter's figure shows/);
  });
});
