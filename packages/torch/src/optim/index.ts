export { Optimizer, type ParamGroup, type OptimizerState } from './optimizer.ts';
export { SGD, type SGDOptions } from './sgd.ts';
export { Adam, AdamW, type AdamOptions } from './adam.ts';
export { clipGradNorm } from './clip.ts';
export * from './schedulers.ts';
