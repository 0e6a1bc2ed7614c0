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

/** Raw call: arguments must already be native handles or plain values. */
export function callNative(qualified: string, args: unknown[]): unknown {
  return native.callOp(opId(qualified), args);
}

export type { NativeTensor };
