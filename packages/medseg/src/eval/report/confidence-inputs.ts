/**
 * Reads what `medseg predict --uncertainty` and `medseg explain` wrote into
 * the records the report's uncertainty and explanation section takes: every
 * `<case>_uncertainty.json` of a prediction folder, every explanation JSON
 * (with its overlay PNG) of an explain folder.
 */
import { readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { CaseUncertainty, ExplanationRecord } from './confidence-section.ts';
import { MedsegIoError } from '../../io/errors.ts';
import { fsError } from '../../io/limits.ts';

function jsonFiles(dir: string): string[] {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new MedsegIoError('BAD_DATA', 'not a folder', dir);
    names = readdirSync(dir);
  } catch (e) {
    if (e instanceof MedsegIoError) throw e;
    throw fsError(e, dir);
  }
  return names
    .filter((n) => n.endsWith('.json'))
    .sort()
    .map((n) => join(dir, n));
}

async function readObject(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw fsError(e, path);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new MedsegIoError('CORRUPT', `not valid JSON (${(e as Error).message})`, path);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new MedsegIoError('BAD_DATA', 'expected a JSON object', path);
  return v as Record<string, unknown>;
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** The per-case uncertainty scores of a `medseg predict --uncertainty` output folder. */
export async function loadUncertaintyFolder(dir: string, model: string): Promise<CaseUncertainty[]> {
  const out: CaseUncertainty[] = [];
  for (const path of jsonFiles(resolve(dir)).filter((p) => p.endsWith('_uncertainty.json'))) {
    const j = await readObject(path);
    if (typeof j.case !== 'string' || !finite(j.score)) {
      throw new MedsegIoError('BAD_DATA', 'an uncertainty file needs a case id and a finite score (written by medseg predict --uncertainty)', path);
    }
    out.push({
      model,
      case: j.case,
      score: j.score,
      flagged: typeof j.flagged === 'boolean' ? j.flagged : null,
      threshold: finite(j.threshold) ? j.threshold : null,
    });
  }
  if (out.length === 0) throw new MedsegIoError('BAD_DATA', 'no <case>_uncertainty.json here: predict with --uncertainty into this folder', resolve(dir));
  return out;
}

interface Faithfulness {
  randomisation?: { spearman?: unknown; spearmanAbs?: unknown; passes?: unknown };
  deletion?: { auc?: unknown; randomAuc?: unknown };
}

/** The explanations of a `medseg explain` output folder, with their overlays. */
export async function loadExplanationFolder(dir: string, model: string): Promise<ExplanationRecord[]> {
  const out: ExplanationRecord[] = [];
  for (const path of jsonFiles(resolve(dir)).filter((p) => !p.endsWith('_uncertainty.json'))) {
    const j = await readObject(path);
    if (typeof j.method !== 'string' || !finite(j.class)) continue;
    const method = j.method;
    const name = basename(path, '.json');
    const caseId = name.endsWith(`_${method}`) ? name.slice(0, -(method.length + 1)) : name;
    const f = (j.faithfulness ?? null) as Faithfulness | null;
    const r = f?.randomisation;
    const d = f?.deletion;
    const rec: ExplanationRecord = {
      model,
      case: caseId,
      method,
      classIndex: j.class,
      massInRegion: finite(j.massInRegion) ? j.massInRegion : null,
      randomisation: r && finite(r.spearman) && finite(r.spearmanAbs) ? { spearman: r.spearman, spearmanAbs: r.spearmanAbs, passes: r.passes === true } : null,
      deletion: d && finite(d.auc) && finite(d.randomAuc) ? { auc: d.auc, randomAuc: d.randomAuc } : null,
      seconds: finite(j.seconds) ? j.seconds : null,
    };
    // The overlay sits beside the JSON; the JSON's own path to it may be from another working folder.
    const overlay = join(dirname(path), `${name}_overlay.png`);
    try {
      rec.overlayPng = new Uint8Array(await readFile(overlay));
    } catch {
      // An explanation without its overlay is still tabulated.
    }
    out.push(rec);
  }
  if (out.length === 0) throw new MedsegIoError('BAD_DATA', 'no explanation JSON here: run medseg explain --out into this folder', resolve(dir));
  return out;
}
