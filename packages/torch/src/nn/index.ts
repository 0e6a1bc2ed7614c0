export { Module, UnaryModule, type ForwardHook } from './module.ts';
export * from './conv.ts';
export * from './norm.ts';
export * from './layers.ts';
export * from './attention.ts';
export * as init from './init.ts';
