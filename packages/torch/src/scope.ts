/**
 * Deterministic freeing. A JS handle to a native tensor is tiny, so the GC
 * feels no pressure from megabytes of native memory; tensors must be freed on
 * purpose. `tidy(fn)` frees every tensor created inside fn except those it
 * returns (which move to the enclosing scope); `keep(t)` exempts a tensor from
 * all scopes (parameters, buffers, optimizer state). Scopes are synchronous:
 * do not await inside tidy.
 */
export interface Disposable {
  dispose(): void;
  readonly disposed: boolean;
}

interface Tracked extends Disposable {
  kept: boolean;
  /** Called when no scope owns the object (made outside tidy, kept, or returned from the outermost tidy). */
  unscoped?(): void;
}

const stack: Set<Tracked>[] = [];

export function track<T extends Tracked>(t: T): T {
  const top = stack[stack.length - 1];
  if (top) top.add(t);
  else t.unscoped?.();
  return t;
}

export function keep<T extends Disposable>(t: T): T {
  (t as unknown as Tracked).kept = true;
  for (const s of stack) s.delete(t as unknown as Tracked);
  (t as unknown as Tracked).unscoped?.();
  return t;
}

/** Undo keep(): the tensor is freed by the next scope that ends around it. */
export function unkeep<T extends Disposable>(t: T): T {
  (t as unknown as Tracked).kept = false;
  track(t as unknown as Tracked);
  return t;
}

function collect(value: unknown, out: Set<unknown>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 4) return;
  if ('dispose' in value && 'kept' in value) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
    return;
  }
  if (value instanceof Map) {
    for (const v of value.values()) collect(v, out, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, depth + 1);
  }
}

export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tracked>();
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    for (const t of scope) if (!t.kept) t.dispose();
    throw e;
  }
  stack.pop();
  if (result instanceof Promise) {
    throw new Error('tidy() got an async function: scopes are synchronous; free tensors explicitly across awaits');
  }
  const returned = new Set<unknown>();
  collect(result, returned);
  const parent = stack[stack.length - 1];
  for (const t of scope) {
    if (returned.has(t)) {
      if (parent) parent.add(t);
      else t.unscoped?.();
    } else if (!t.kept) t.dispose();
  }
  return result;
}

/** Frees every disposable found in a value (arrays, plain objects, maps). */
export function dispose(value: unknown): void {
  const found = new Set<unknown>();
  collect(value, found);
  for (const t of found) (t as Disposable).dispose();
}
