/**
 * Calls an ATen operator by its schema name ('aten::conv2d', 'aten::add.Tensor')
 * through the native dispatcher. Op ids are looked up once and cached.
 * Arguments go in schema order; `undefined` takes the schema default.
 */
import { native, type NativeTensor } from './native.ts';

const ids = new Map<string, number>();

export function opId(qualified: string): number {
  let id = ids.get(qualified);
  if (id === undefined) {
    const dot = qualified.indexOf('.');
    const name = dot < 0 ? qualified : qualified.slice(0, dot);
    const overload = dot < 0 ? '' : qualified.slice(dot + 1);
    id = native.lookupOp(name, overload);
    ids.set(qualified, id);
  }
  return id;
}

export function opSchema(qualified: string): string {
  return native.opSchema(opId(qualified));
}

/**
 * Watches every op call while set (the tracer): before() sees the arguments
 * before the op runs (so an in-place op's inputs are read as they were),
 * after() sees what it returned; read() sees a tensor's values being copied
 * out to JS.
 */
export interface OpObserver {
  before(qualified: string, args: unknown[]): unknown;
  after(token: unknown, result: unknown): void;
  read(handle: NativeTensor): void;
}

let observer: OpObserver | null = null;

/** Installs an observer (null removes it); returns the one it replaces. */
export function setOpObserver(o: OpObserver | null): OpObserver | null {
  const prev = observer;
  observer = o;
  return prev;
}

/** Tells the observer that a tensor's values are read into JS (data-dependent control flow). */
export function observeRead(handle: NativeTensor): void {
  observer?.read(handle);
}

/** Raw call: arguments must already be native handles or plain values. */
export function callNative(qualified: string, args: unknown[]): unknown {
  const o = observer;
  if (!o) return native.callOp(opId(qualified), args);
  const token = o.before(qualified, args);
  const result = native.callOp(opId(qualified), args);
  o.after(token, result);
  return result;
}

export type { NativeTensor };
