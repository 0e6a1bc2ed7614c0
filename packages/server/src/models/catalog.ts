/**
 * The models the service offers: every model folder directly under the
 * models folder (one holding plan.json), named by its folder. A model's
 * version is the SHA-256 of its plan and of the weights prediction uses
 * (each fold's best, else final, weights, as loadModel picks them), so a
 * job records exactly which weights made its result. Hashes are kept while
 * the files' sizes and modification times stay the same.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { listFolds, modelCardPaths, modelFile, weightsFile } from '@medseg/medseg/plan/model-folder';
import { loadPlan } from '@medseg/medseg/plan/store';

/** Model ids are folder names: letters, digits, dot, dash, underscore; no leading dot. */
export const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface ModelInfo {
  id: string;
  dataset: string;
  dims: string;
  architecture: string;
  channels: string[];
  labels: Record<string, string>;
  folds: number[];
  /** SHA-256 (hex) of plan.json and the weights files, in fold order. */
  weightsSha256: string;
  /** Its first 12 hex digits: what jobs and listings show. */
  version: string;
  /** model-card.json, when the folder has one. */
  card: Record<string, unknown> | null;
}

/** A model folder that cannot be offered (shown in the server log, left out of the listing). */
export class ModelFolderError extends Error {
  override readonly name = 'ModelFolderError';
}

export class ModelCatalog {
  private readonly cache = new Map<string, { signature: string; info: ModelInfo }>();

  constructor(readonly dir: string) {}

  /** The folder of a model id, or undefined when the id is malformed or names no model folder. */
  folder(id: string): string | undefined {
    if (!MODEL_ID.test(id)) return undefined;
    const dir = join(this.dir, id);
    return existsSync(modelFile(dir, 'plan')) ? dir : undefined;
  }

  /** Every offered model, by id; folders that cannot be read are reported to onError and left out. */
  list(onError?: (id: string, e: Error) => void): ModelInfo[] {
    if (!existsSync(this.dir)) return [];
    const out: ModelInfo[] = [];
    for (const id of readdirSync(this.dir).sort()) {
      if (!this.folder(id)) continue;
      try {
        out.push(this.info(id));
      } catch (e) {
        onError?.(id, e as Error);
      }
    }
    return out;
  }

  /** One model's description; throws ModelFolderError when it is absent or unreadable. */
  info(id: string): ModelInfo {
    const dir = this.folder(id);
    if (!dir) throw new ModelFolderError(`no model ${JSON.stringify(id)}`);
    const planPath = modelFile(dir, 'plan');
    const weights = listFolds(dir)
      .map((f) => ({ fold: f.fold, file: weightsFile(f.dir) }))
      .filter((f): f is { fold: number; file: string } => f.file !== null);
    if (weights.length === 0) throw new ModelFolderError(`model ${id} has no trained fold`);
    const files = [planPath, ...weights.map((w) => w.file)];
    const cardPath = modelCardPaths(dir).json;
    const signature = [...files, cardPath]
      .map((f) => {
        const st = statSync(f, { throwIfNoEntry: false });
        return `${f}:${st?.size}:${st?.mtimeMs}`;
      })
      .join('|');
    const cached = this.cache.get(id);
    if (cached?.signature === signature) return cached.info;
    const plan = loadPlan(planPath);
    const h = createHash('sha256');
    for (const f of files) h.update(readFileSync(f));
    const sha = h.digest('hex');
    let card: Record<string, unknown> | null = null;
    if (existsSync(cardPath)) {
      try {
        const raw = JSON.parse(readFileSync(cardPath, 'utf8')) as unknown;
        if (raw && typeof raw === 'object' && !Array.isArray(raw)) card = raw as Record<string, unknown>;
      } catch {
        card = null; // an unreadable card does not hide the model
      }
    }
    const info: ModelInfo = {
      id,
      dataset: plan.dataset,
      dims: plan.dims,
      architecture: plan.network.architecture,
      channels: [...plan.channels],
      labels: Object.fromEntries(Object.entries(plan.labels).map(([k, v]) => [k, String(v)])),
      folds: weights.map((w) => w.fold),
      weightsSha256: sha,
      version: sha.slice(0, 12),
      card,
    };
    this.cache.set(id, { signature, info });
    return info;
  }
}
