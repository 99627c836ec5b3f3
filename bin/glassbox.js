#!/usr/bin/env node
// The `glassbox` command. The TypeScript sources compile to dist/ on `npm install` (the "prepare" script).
import { main } from '../dist/src/cli/main.js';

process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
