/** Element types, with libtorch's c10::ScalarType codes. */
export type DType = 'uint8' | 'int8' | 'int16' | 'int32' | 'int64' | 'float16' | 'bfloat16' | 'float32' | 'float64' | 'bool';

export const DTYPE_CODE: Record<DType, number> = {
  uint8: 0,
  int8: 1,
  int16: 2,
  int32: 3,
  int64: 4,
  float16: 5,
  float32: 6,
  float64: 7,
  bool: 11,
  bfloat16: 15,
};

const BY_CODE = new Map<number, DType>(Object.entries(DTYPE_CODE).map(([k, v]) => [v, k as DType]));

export function dtypeFromCode(code: number): DType {
  const d = BY_CODE.get(code);
  if (!d) throw new Error(`unsupported libtorch scalar type code ${code}`);
  return d;
}

export type TypedArrayFor<D extends DType> = D extends 'uint8' | 'bool'
  ? Uint8Array
  : D extends 'int8'
    ? Int8Array
    : D extends 'int16'
      ? Int16Array
      : D extends 'int32'
        ? Int32Array
        : D extends 'int64'
          ? BigInt64Array
          : D extends 'float16' | 'bfloat16'
            ? Uint16Array
            : D extends 'float32'
              ? Float32Array
              : Float64Array;

export type AnyTypedArray = Uint8Array | Int8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | Float32Array | Float64Array;

/** The dtype a typed array holds (Uint16/Uint32 have no libtorch twin). */
export function dtypeOfArray(a: AnyTypedArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof Uint8Array) return 'uint8';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Int16Array) return 'int16';
  throw new TypeError(`${a.constructor.name} has no libtorch dtype; convert it first (e.g. to Int32Array or Float32Array)`);
}

export function typedArrayFrom(buf: ArrayBuffer, dtype: DType): AnyTypedArray {
  switch (dtype) {
    case 'uint8':
    case 'bool':
      return new Uint8Array(buf);
    case 'int8':
      return new Int8Array(buf);
    case 'int16':
      return new Int16Array(buf);
    case 'int32':
      return new Int32Array(buf);
    case 'int64':
      return new BigInt64Array(buf);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(buf);
    case 'float32':
      return new Float32Array(buf);
    case 'float64':
      return new Float64Array(buf);
  }
}

export function isFloating(d: DType): boolean {
  return d === 'float16' || d === 'bfloat16' || d === 'float32' || d === 'float64';
}

export function elementSize(d: DType): number {
  switch (d) {
    case 'uint8':
    case 'int8':
    case 'bool':
      return 1;
    case 'int16':
    case 'float16':
    case 'bfloat16':
      return 2;
    case 'int32':
    case 'float32':
      return 4;
    default:
      return 8;
  }
}
