/**
 * @medseg/torch: libtorch for TypeScript. Tensors, autograd, functional ops,
 * nn modules, optimizers, LR schedules and safetensors, CPU (and CUDA when the
 * linked libtorch has it).
 */
export { Tensor, Generator, call, callT, type FactoryOptions, type TensorOrScalar, type MemoryFormat } from './tensor.ts';
export type { DType, AnyTypedArray } from './dtype.ts';
export { isFloating } from './dtype.ts';
export * from './creation.ts';
export { noGrad, enableGrad, isGradEnabled, setGradEnabled } from './autograd.ts';
export { tidy, keep, unkeep, dispose } from './scope.ts';
export { autocast, isAutocastEnabled, autocastDtype, bf16Support, type AutocastOptions, type AutocastDType, type Bf16Support } from './autocast.ts';
export { opSchema } from './ops.ts';
export * from './runtime.ts';
export * as F from './functional.ts';
export * as nn from './nn/index.ts';
export * as optim from './optim/index.ts';
export * from './safetensors.ts';
export { ProcessGroup, DistributedError, freePort, type DistributedErrorCode, type JoinOptions } from './distributed.ts';
export { trace, TraceError, type TraceResult } from './trace/tracer.ts';
export * from './trace/graph.ts';
export { traceDynamic, type DynamicAxis, type DynamicTrace, type SymInt } from './trace/dynamic.ts';
