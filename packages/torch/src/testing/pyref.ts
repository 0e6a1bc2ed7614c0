/**
 * PyTorch as the reference for engine tests. A test file collects cases (named
 * inputs + a Python expression), runs ONE /usr/bin/python3 process
 * (torch_ref.py) for all of them, then compares our outputs with torch's in one
 * node:test test per case. Inputs travel as raw bytes, so both sides see the
 * same values bit for bit.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { native } from '../native.ts';
import { Tensor } from '../tensor.ts';
import { tidy } from '../scope.ts';

export const PYTHON = '/usr/bin/python3';
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'torch_ref.py');

export type RefOutput = { dtype: string; shape: number[]; data: Float64Array } | { value: number | string | boolean };

export interface Tolerance {
  rtol?: number;
  atol?: number;
}

/** What a case's own side may produce: tensors, numbers, strings, nested in arrays. */
export type Ours = Tensor | number | string | boolean | Ours[];

interface Case {
  name: string;
  code: string;
  inputs: Record<string, Tensor>;
  ours: () => Ours;
  tol: Tolerance;
}

/** Runs the cases in one Python process; returns each case's outputs or its Python error. */
export function runReference(cases: { name: string; code: string; inputs: Record<string, Tensor> }[]): Map<string, RefOutput[] | Error> {
  const dir = mkdtempSync(join(tmpdir(), 'torch-ref-'));
  try {
    const chunks: Uint8Array[] = [];
    let offset = 0;
    const spec = cases.map((c) => {
      const inputs: Record<string, unknown> = {};
      for (const [k, t] of Object.entries(c.inputs)) {
        const bytes = new Uint8Array(native.toBuffer(t.handle));
        inputs[k] = { dtype: t.dtype, shape: t.shape, offset, nbytes: bytes.byteLength };
        chunks.push(bytes);
        offset += bytes.byteLength;
      }
      return { name: c.name, code: c.code, inputs };
    });
    writeFileSync(join(dir, 'spec.json'), JSON.stringify({ cases: spec }));
    writeFileSync(join(dir, 'inputs.bin'), Buffer.concat(chunks));
    execFileSync(PYTHON, [SCRIPT, dir], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, OMP_NUM_THREADS: '1' } });
    const out = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as Record<string, { error?: string; outputs?: Record<string, unknown>[] }>;
    const blob = readFileSync(join(dir, 'out.bin'));
    const results = new Map<string, RefOutput[] | Error>();
    for (const [name, r] of Object.entries(out)) {
      if (r.error) {
        results.set(name, new Error(`python reference for '${name}' failed:\n${r.error}`));
        continue;
      }
      results.set(
        name,
        r.outputs!.map((o) => {
          if ('value' in o) return { value: o.value as number | string | boolean };
          const off = o.offset as number;
          const n = o.nbytes as number;
          const data = new Float64Array(blob.buffer.slice(blob.byteOffset + off, blob.byteOffset + off + n));
          return { dtype: o.dtype as string, shape: o.shape as number[], data };
        }),
      );
    }
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function defaultTolerance(dtype: string): Required<Tolerance> {
  if (dtype === 'float64') return { rtol: 1e-10, atol: 1e-12 };
  if (dtype === 'float32') return { rtol: 1e-5, atol: 1e-5 };
  if (dtype === 'float16') return { rtol: 1e-3, atol: 1e-3 };
  if (dtype === 'bfloat16') return { rtol: 1e-2, atol: 1e-2 };
  return { rtol: 0, atol: 0 };
}

/** Asserts a tensor equals a reference output: dtype, shape, values within tolerance (NaN == NaN). */
export function assertTensorClose(actual: Tensor, expected: RefOutput, tol: Tolerance = {}, label = 'value'): void {
  assert.ok('data' in expected, `${label}: reference is a ${typeof (expected as { value: unknown }).value}, ours is a tensor`);
  assert.equal(actual.dtype, expected.dtype, `${label}: dtype`);
  assert.deepEqual(actual.shape, expected.shape, `${label}: shape`);
  const a = tidy(() => (actual.dtype === 'float64' ? actual : actual.to('float64')).toTypedArray() as Float64Array);
  const { rtol, atol } = { ...defaultTolerance(actual.dtype), ...tol };
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = expected.data[i]!;
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (x === y) continue;
    const err = Math.abs(x - y) - (atol + rtol * Math.abs(y));
    if (!(err <= 0) && (worst < 0 || err > worstErr || Number.isNaN(err))) {
      worst = i;
      worstErr = err;
    }
  }
  if (worst >= 0) {
    assert.fail(`${label}: element ${worst} is ${a[worst]}, torch gives ${expected.data[worst]} (rtol ${rtol}, atol ${atol})`);
  }
}

function flattenOurs(v: Ours, acc: (Tensor | number | string | boolean)[] = []): (Tensor | number | string | boolean)[] {
  if (Array.isArray(v)) for (const x of v) flattenOurs(x, acc);
  else acc.push(v);
  return acc;
}

export function assertMatchesReference(ours: Ours, ref: RefOutput[], tol: Tolerance = {}): void {
  const flat = flattenOurs(ours);
  assert.equal(flat.length, ref.length, `number of outputs: ours ${flat.length}, torch ${ref.length}`);
  flat.forEach((o, i) => {
    const r = ref[i]!;
    const label = `output ${i}`;
    if (o instanceof Tensor) return assertTensorClose(o, r, tol, label);
    assert.ok('value' in r, `${label}: ours is ${typeof o}, torch gave a tensor`);
    if (typeof o === 'number' && typeof r.value === 'number') {
      const rtol = tol.rtol ?? 1e-6;
      const atol = tol.atol ?? 1e-9;
      assert.ok(Math.abs(o - r.value) <= atol + rtol * Math.abs(r.value), `${label}: ${o} vs torch ${r.value}`);
    } else {
      assert.equal(o, r.value, label);
    }
  });
}

/**
 * A file's worth of reference cases. `check` records one case; `run()` (call it
 * once, at the end of the file's top level) computes every reference in one
 * Python process and registers one test per case.
 */
export class RefSuite {
  private readonly cases: Case[] = [];
  private readonly names = new Set<string>();

  constructor(readonly prefix = '') {}

  /**
   * name: test name; inputs: tensors bound to Python names; code: the torch
   * expression (or statements assigning `out`); ours: our computation.
   */
  check(name: string, inputs: Record<string, Tensor>, code: string, ours: () => Ours, tol: Tolerance = {}): void {
    if (this.names.has(name)) throw new Error(`duplicate reference case '${name}'`);
    this.names.add(name);
    for (const t of Object.values(inputs)) t.keep();
    this.cases.push({ name, code, inputs, ours, tol });
  }

  run(): void {
    const results = runReference(this.cases);
    for (const c of this.cases) {
      test(`${this.prefix}${c.name}`, () => {
        const ref = results.get(c.name);
        assert.ok(ref, `no reference output for '${c.name}'`);
        if (ref instanceof Error) throw ref;
        tidy(() => assertMatchesReference(c.ours(), ref, c.tol));
      });
    }
  }
}
