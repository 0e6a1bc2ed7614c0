/**
 * @medseg/medseg's library entry: the functions the `medseg` commands call,
 * one stage per line. Every module is also importable on its own
 * (`@medseg/medseg/io/read`, `@medseg/medseg/eval/evaluate-folder`, ...),
 * which loads only what that module needs; this entry loads the engine.
 */
export * from './io/read.ts';
export * from './io/volume.ts';
export * from './io/errors.ts';
export * from './data/dataset.ts';
export * from './data/import.ts';
export * from './data/fingerprint.ts';
export * from './data/planner.ts';
export * from './plan/types.ts';
export * from './plan/store.ts';
export * from './plan/model-folder.ts';
export * from './pipeline/plan-dataset.ts';
export * from './pipeline/train-model.ts';
export { pretrainModel, type PretrainModelOptions, type PretrainModelResult } from './pipeline/pretrain.ts';
export { synthesizePairs, type SynthesizePairsOptions, type SynthesizePairsResult } from './pipeline/synthesize.ts';
export { measureFidelity, type FidelityOptions, type FidelityReport } from './pipeline/synthesize-fidelity.ts';
export * from './pipeline/predict-folder.ts';
export * from './eval/evaluate-folder.ts';
export * from './eval/report/html-report.ts';
