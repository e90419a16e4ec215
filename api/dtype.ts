// api/dtype.ts: the three input dtypes and exact conversions between fp32 and the 16-bit
// formats (round to nearest even, like a GPU's cvt.rn), for building fp16/bf16 logits in JS.
/** A logits element type: IEEE fp32, IEEE fp16, or bfloat16. */
export type Dtype = "f32" | "f16" | "bf16";
/** Every supported dtype. */
export const dtypes: readonly Dtype[] = ["f32", "f16", "bf16"];
/** Bytes per element of a dtype (4 or 2). */
export const dtypeBytes = (dtype: Dtype): number => (dtype === "f32" ? 4 : 2);

/** Logits in memory: fp32 as Float32Array, fp16/bf16 as their raw bits in a Uint16Array. */
export type Logits = Float32Array | Uint16Array;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** One fp32 value to bf16 bits, round to nearest even; NaN stays NaN. */
export function floatToBf16Bits(value: number): number {
  f32[0] = value;
  const bits = u32[0] as number;
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x0040) & 0xffff; // quiet NaN
  const rounding = 0x7fff + ((bits >>> 16) & 1);
  return ((bits + rounding) >>> 16) & 0xffff;
}

/** bf16 bits to the fp32 value they hold (exact). */
export function bf16BitsToFloat(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0] as number;
}

/** One fp32 value to fp16 bits, round to nearest even, with subnormals, overflow to infinity. */
export function floatToF16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const absBits = x & 0x7fffffff;
  if (absBits > 0x7f800000) return sign | 0x7e00; // NaN
  if (absBits >= 0x477ff000) return sign | 0x7c00; // rounds to >= 65520 -> inf
  const exp = absBits >>> 23;
  if (exp < 113) {
    // fp16 subnormal (or zero): value = mantissa * 2^-24
    if (exp < 102) return sign; // below half the smallest subnormal: rounds to 0
    const man = (absBits & 0x7fffff) | 0x800000;
    const shift = 126 - exp; // 14..24
    const half = 1 << (shift - 1);
    const rest = man & ((1 << shift) - 1);
    let out = man >>> shift;
    if (rest > half || (rest === half && out & 1)) out += 1;
    return sign | out;
  }
  // normal: rebias exponent, round the 13 dropped mantissa bits to nearest even
  const rebased = absBits - (112 << 23);
  const rounding = 0xfff + ((rebased >>> 13) & 1);
  return sign | ((rebased + rounding) >>> 13);
}

/** fp16 bits to the fp32 value they hold (exact). */
export function f16BitsToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const man = bits & 0x3ff;
  if (exp === 0x1f) return man ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  if (exp === 0) return sign * man * 2 ** -24;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

/** Converts fp32 values to the given dtype's in-memory form (Float32Array or Uint16Array of bits). */
export function toLogits(values: ArrayLike<number>, dtype: Dtype): Logits {
  if (dtype === "f32") return Float32Array.from(values);
  const out = new Uint16Array(values.length);
  const convert = dtype === "bf16" ? floatToBf16Bits : floatToF16Bits;
  for (let i = 0; i < values.length; i++) out[i] = convert(values[i] as number);
  return out;
}

/** The fp32 values held in logits of the given dtype. */
export function logitsToFloat32(logits: Logits, dtype: Dtype): Float32Array {
  if (dtype === "f32") return Float32Array.from(logits);
  const out = new Float32Array(logits.length);
  const convert = dtype === "bf16" ? bf16BitsToFloat : f16BitsToFloat;
  for (let i = 0; i < logits.length; i++) out[i] = convert(logits[i] as number);
  return out;
}
