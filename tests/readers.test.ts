// tests/readers.test.ts: the .npy and safetensors logits readers (api/npy.ts, api/safetensors.ts,
// api/logits_file.ts). Files are built by hand here (not with the module's own writers), including
// malformed ones: truncated, wrong dtype, wrong shape, headers that lie about sizes. Every bad
// file must give a ValidationError with a useful message: never a crash, a RangeError from a
// DataView, or a wrong answer. Routing logits read from a file must equal routing the same array.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createRouter,
  type Dtype,
  encodeNpy,
  encodeSafetensors,
  floatToBf16Bits,
  floatToF16Bits,
  type LogitsTensor,
  parseLogitsFile,
  parseNpy,
  parseSafetensors,
  parseSafetensorsHeader,
  readLogitsFile,
  readNpy,
  readSafetensors,
  toLogits,
  ValidationError,
} from "../mod.ts";

// ---- hand-built files ---------------------------------------------------------------------------

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));

/** An .npy file: magic, version, header length (u16 for v1, u32 for v2/v3), header text, payload. */
function npy(
  header: string,
  payload: Uint8Array,
  opts: { major?: number; lengthField?: number; pad?: boolean } = {},
): Uint8Array {
  const major = opts.major ?? 1;
  const prefix = major === 1 ? 10 : 12;
  let text = header;
  if (opts.pad !== false) {
    text += " ".repeat((64 - ((prefix + text.length + 1) % 64)) % 64);
    text += "\n";
  }
  const head = new Uint8Array(prefix);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const view = new DataView(head.buffer);
  if (major === 1) view.setUint16(8, opts.lengthField ?? text.length, true);
  else view.setUint32(8, opts.lengthField ?? text.length, true);
  return concat(head, ascii(text), payload);
}

const dict = (descr: string, shape: string, fortran = "False") =>
  `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;

/** A safetensors file: u64 header length, JSON header (object or raw text), payload. */
function safetensors(header: unknown, payload: Uint8Array, opts: { lengthField?: bigint } = {}): Uint8Array {
  const json = ascii(typeof header === "string" ? header : JSON.stringify(header));
  const head = new Uint8Array(8);
  new DataView(head.buffer).setBigUint64(0, opts.lengthField ?? BigInt(json.length), true);
  return concat(head, json, payload);
}

// A 3 x 5 logits matrix with distinct values, and its f16 / bf16 bit patterns.
const T = 3;
const E = 5;
const values = Float32Array.from({ length: T * E }, (_, i) => Math.sin(i * 1.7) * 3 + (i % 3) * 0.25);
const f16 = Uint16Array.from(values, floatToF16Bits);
const bf16 = Uint16Array.from(values, floatToBf16Bits);

const expectValidation = (fn: () => unknown, message: RegExp) => {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ValidationError);
  expect((error as Error).message).toMatch(message);
};

/** Calls fn; passes if it returns or throws a ValidationError; fails on any other exception. */
const neverCrashes = (fn: () => unknown): "ok" | "rejected" => {
  try {
    fn();
    return "ok";
  } catch (e) {
    if (e instanceof ValidationError) return "rejected";
    throw e;
  }
};

// ---- .npy ---------------------------------------------------------------------------------------

describe("npy: valid files", () => {
  test("v1 '<f4' [T, E]", () => {
    const r = parseNpy(npy(dict("<f4", `(${T}, ${E})`), bytesOf(values)));
    expect(r.dtype).toBe("f32");
    expect([r.tokens, r.experts]).toEqual([T, E]);
    expect(r.shape).toEqual([T, E]);
    expect(r.storedAs).toBe("<f4");
    expect(r.data).toBeInstanceOf(Float32Array);
    expect(Array.from(r.data)).toEqual(Array.from(values));
    expect(r.convertedFrom).toBeUndefined();
  });

  test.each([2, 3])("format v%d.0 header (u32 length)", (major) => {
    const r = parseNpy(npy(dict("<f4", `(${T}, ${E})`), bytesOf(values), { major }));
    expect(Array.from(r.data)).toEqual(Array.from(values));
  });

  test("'<f2' gives fp16 bits", () => {
    const r = parseNpy(npy(dict("<f2", `(${T}, ${E})`), bytesOf(f16)));
    expect(r.dtype).toBe("f16");
    expect(r.data).toBeInstanceOf(Uint16Array);
    expect(Array.from(r.data)).toEqual(Array.from(f16));
  });

  test.each(["<u2", "<i2", "<V2", "|V2"])("bf16 bits stored as '%s' read with dtype bf16", (descr) => {
    const r = parseNpy(npy(dict(descr, `(${T}, ${E})`), bytesOf(bf16)), { dtype: "bf16" });
    expect(r.dtype).toBe("bf16");
    expect(r.storedAs).toBe(descr);
    expect(Array.from(r.data)).toEqual(Array.from(bf16));
  });

  test("raw 16-bit '<u2' read with dtype f16 gives fp16 bits", () => {
    const r = parseNpy(npy(dict("<u2", `(${T}, ${E})`), bytesOf(f16)), { dtype: "f16" });
    expect(Array.from(r.data)).toEqual(Array.from(f16));
  });

  test("1-D [E] is one token", () => {
    const r = parseNpy(npy(dict("<f4", `(${E},)`), bytesOf(values.subarray(0, E))));
    expect([r.tokens, r.experts]).toEqual([1, E]);
  });

  test("[0, E] is zero tokens", () => {
    const r = parseNpy(npy(dict("<f4", `(0, ${E})`), new Uint8Array(0)));
    expect([r.tokens, r.experts, r.data.length]).toEqual([0, E, 0]);
  });

  test("fortran_order True is accepted where it is the same layout (one row)", () => {
    const r = parseNpy(npy(dict("<f4", `(1, ${E})`, "True"), bytesOf(values.subarray(0, E))));
    expect(Array.from(r.data)).toEqual(Array.from(values.subarray(0, E)));
  });

  test("unpadded header: data at an odd, unaligned offset still reads exactly", () => {
    const header = `${dict("<f4", `(${T}, ${E})`)} \n`; // 10 + 61 bytes: data starts at 71
    const file = npy(header, bytesOf(values), { pad: false });
    expect((file.length - values.byteLength) % 4).not.toBe(0);
    expect(Array.from(parseNpy(file).data)).toEqual(Array.from(values));
    // ... and from a Uint8Array that is itself a view at an odd offset of a larger buffer.
    const big = new Uint8Array(file.length + 3);
    big.set(file, 3);
    expect(Array.from(parseNpy(big.subarray(3)).data)).toEqual(Array.from(values));
  });

  test("header variations numpy accepts: double quotes, keys in any order, Python 2 long", () => {
    const header = `{"shape": (3L, 5L), "fortran_order": False, "descr": "<f4"}`;
    expect(Array.from(parseNpy(npy(header, bytesOf(values))).data)).toEqual(Array.from(values));
  });

  test("dtype option converts fp32 to bf16 / fp16 (round to nearest even) and says so", () => {
    const file = npy(dict("<f4", `(${T}, ${E})`), bytesOf(values));
    const asBf16 = parseNpy(file, { dtype: "bf16" });
    expect(asBf16.dtype).toBe("bf16");
    expect(asBf16.convertedFrom).toBe("f32");
    expect(Array.from(asBf16.data)).toEqual(Array.from(bf16));
    expect(Array.from(parseNpy(file, { dtype: "f16" }).data)).toEqual(Array.from(f16));
  });

  test("dtype option widens fp16 to fp32 exactly", () => {
    const r = parseNpy(npy(dict("<f2", `(${T}, ${E})`), bytesOf(f16)), { dtype: "f32" });
    expect(r.convertedFrom).toBe("f16");
    const back = Uint16Array.from(r.data as Float32Array, floatToF16Bits);
    expect(Array.from(back)).toEqual(Array.from(f16));
  });
});

describe("npy: malformed files are clear errors", () => {
  const good = () => npy(dict("<f4", `(${T}, ${E})`), bytesOf(values));

  test("not an .npy file", () => {
    expectValidation(() => parseNpy(ascii("hello, this is not numpy at all")), /not an \.npy file.*np\.save/);
  });
  test("too short for a header", () => {
    expectValidation(() => parseNpy(good().subarray(0, 7)), /too short.*truncated/);
    expectValidation(() => parseNpy(new Uint8Array(0)), /not an \.npy file|too short/);
  });
  test("unsupported format version", () => {
    const f = good();
    f[6] = 4;
    expectValidation(() => parseNpy(f), /version 4\.0 is not supported/);
  });
  test("header length longer than the file", () => {
    expectValidation(
      () => parseNpy(npy(dict("<f4", "(3, 5)"), new Uint8Array(0), { lengthField: 5000 })),
      /claims 5000 bytes.*truncated/,
    );
  });
  test("absurd v2 header length", () => {
    expectValidation(
      () => parseNpy(npy(dict("<f4", "(3, 5)"), bytesOf(values), { major: 2, lengthField: 0xffffffff })),
      /header claims \d+ bytes/,
    );
  });
  test("truncated data (one byte short)", () => {
    const f = good();
    expectValidation(() => parseNpy(f.subarray(0, f.length - 1)), /truncated/);
  });
  test("header lies: shape bigger than the data", () => {
    expectValidation(() => parseNpy(npy(dict("<f4", "(300, 5)"), bytesOf(values))), /only 60 bytes follow.*truncated/);
  });
  test("header lies: shape smaller than the data", () => {
    expectValidation(() => parseNpy(npy(dict("<f4", "(2, 5)"), bytesOf(values))), /20 bytes follow.*does not match/);
  });
  test("header lies: enormous shape is rejected before any allocation", () => {
    expectValidation(() => parseNpy(npy(dict("<f4", "(67108864, 67108864)"), bytesOf(values))), /truncated/);
    expectValidation(() => parseNpy(npy(dict("<f4", "(4294967296, 4294967296)"), bytesOf(values))), /too large/);
  });
  test("wrong dtype: float64, big-endian, integers, structured", () => {
    expectValidation(() => parseNpy(npy(dict("<f8", "(3, 5)"), new Uint8Array(120))), /float64.*astype\(np\.float32\)/);
    expectValidation(() => parseNpy(npy(dict(">f4", "(3, 5)"), bytesOf(values))), /big-endian.*'<f4'/);
    expectValidation(() => parseNpy(npy(dict("<i4", "(3, 5)"), bytesOf(values))), /unsupported element type '<i4'/);
    expectValidation(() => parseNpy(npy(dict(">i2", "(3, 5)"), bytesOf(bf16))), /big-endian.*'<i2'/);
    const structured = "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }";
    expectValidation(() => parseNpy(npy(structured, new Uint8Array(12))), /structured/);
  });
  test("raw 16-bit values without a dtype say to pass --dtype bf16", () => {
    expectValidation(() => parseNpy(npy(dict("<u2", "(3, 5)"), bytesOf(bf16))), /dtype bf16 \(--dtype bf16\)/);
    expectValidation(
      () => parseNpy(npy(dict("<V2", "(3, 5)"), bytesOf(bf16)), { dtype: "f32" }),
      /NumPy has no bfloat16/,
    );
  });
  test("wrong shape: scalar, 3-D, no experts", () => {
    expectValidation(() => parseNpy(npy(dict("<f4", "()"), bytesOf(values.subarray(0, 1)))), /must be 2-D/);
    expectValidation(() => parseNpy(npy(dict("<f4", "(1, 3, 5)"), bytesOf(values))), /must be 2-D.*reshape/);
    expectValidation(() => parseNpy(npy(dict("<f4", "(3, 0)"), new Uint8Array(0))), /no experts/);
  });
  test("Fortran order with more than one row and column", () => {
    expectValidation(
      () => parseNpy(npy(dict("<f4", "(3, 5)", "True"), bytesOf(values))),
      /Fortran.*np\.ascontiguousarray/,
    );
  });
  test.each([
    ["not a dict", "[1, 2, 3]"],
    ["unterminated string", "{'descr': '<f4, 'fortran_order': False, 'shape': (3, 5)}"],
    ["missing shape", "{'descr': '<f4', 'fortran_order': False}"],
    ["missing fortran_order", "{'descr': '<f4', 'shape': (3, 5)}"],
    ["negative dimension", "{'descr': '<f4', 'fortran_order': False, 'shape': (-3, 5)}"],
    ["shape of strings", "{'descr': '<f4', 'fortran_order': False, 'shape': ('3', 5)}"],
    ["executable code", "__import__('os').system('false')"],
    ["trailing garbage", "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5)} junk"],
    ["deep nesting", `{'descr': '<f4', 'x': ${"(".repeat(100)}${")".repeat(100)}}`],
  ])("malformed header: %s", (_, header) => {
    expectValidation(() => parseNpy(npy(header, bytesOf(values))), /npy|shape|2-D|dimension/);
  });
  test("a bad dtype option is rejected", () => {
    expectValidation(() => parseNpy(good(), { dtype: "f64" as Dtype }), /dtype "f64" is not one of/);
  });
  test("a non-Uint8Array argument is rejected", () => {
    expectValidation(() => parseNpy("file.npy" as unknown as Uint8Array), /Uint8Array/);
  });
});

describe("npy: robustness", () => {
  test("every truncation of a valid file is a ValidationError", () => {
    for (const file of [
      npy(dict("<f4", `(${T}, ${E})`), bytesOf(values)),
      npy(dict("<f4", `(${T}, ${E})`), bytesOf(values), { major: 3 }),
    ]) {
      for (let n = 0; n < file.length; n++)
        expect({ n, outcome: neverCrashes(() => parseNpy(file.subarray(0, n))) }).toEqual({ n, outcome: "rejected" });
    }
  });
  test("flipping any header byte never crashes and never reads out of bounds", () => {
    const file = npy(dict("<f4", `(${T}, ${E})`), bytesOf(values));
    const headerEnd = file.length - values.byteLength;
    for (let i = 0; i < headerEnd; i++)
      for (const value of [0x00, 0x20, 0x27, 0x29, 0x31, 0x39, 0x7b, 0xff]) {
        const copy = file.slice();
        copy[i] = value;
        const outcome = neverCrashes(() => {
          const r = parseNpy(copy);
          // Whatever was accepted must be self-consistent.
          expect(r.data.length).toBe(r.tokens * r.experts);
        });
        expect(["ok", "rejected"]).toContain(outcome);
      }
  });
});

// ---- safetensors --------------------------------------------------------------------------------

describe("safetensors: valid files", () => {
  test.each([
    ["F32", "f32", values],
    ["F16", "f16", f16],
    ["BF16", "bf16", bf16],
  ] as const)("one %s tensor [T, E]", (stDtype, dtype, data) => {
    const file = safetensors(
      { logits: { dtype: stDtype, shape: [T, E], data_offsets: [0, data.byteLength] } },
      bytesOf(data),
    );
    const r = parseSafetensors(file);
    expect(r.name).toBe("logits");
    expect(r.dtype).toBe(dtype);
    expect(r.storedAs).toBe(stDtype);
    expect([r.tokens, r.experts]).toEqual([T, E]);
    expect(Array.from(r.data)).toEqual(Array.from(data));
  });

  const withBias = () =>
    safetensors(
      {
        __metadata__: { format: "pt" },
        "model.layers.3.mlp.gate.e_score_correction_bias": { dtype: "F32", shape: [E], data_offsets: [0, 4 * E] },
        "model.layers.3.router_logits": { dtype: "BF16", shape: [T, E], data_offsets: [4 * E, 4 * E + 2 * T * E] },
      },
      concat(bytesOf(values.subarray(0, E)), bytesOf(bf16)),
    );

  test("default: the only 2-D tensor, next to a 1-D bias and __metadata__", () => {
    const r = parseSafetensors(withBias());
    expect(r.name).toBe("model.layers.3.router_logits");
    expect(Array.from(r.data)).toEqual(Array.from(bf16));
  });

  test("the tensor option picks a 1-D tensor as one token", () => {
    const r = parseSafetensors(withBias(), { tensor: "model.layers.3.mlp.gate.e_score_correction_bias" });
    expect([r.tokens, r.experts]).toEqual([1, E]);
    expect(Array.from(r.data)).toEqual(Array.from(values.subarray(0, E)));
  });

  test("a file with a single 1-D tensor is read without naming it", () => {
    const file = safetensors(
      { x: { dtype: "F32", shape: [E], data_offsets: [0, 4 * E] } },
      bytesOf(values.subarray(0, E)),
    );
    expect(parseSafetensors(file).tokens).toBe(1);
  });

  test("header length not a multiple of 8: unaligned data still reads exactly", () => {
    const header = { a: { dtype: "F32", shape: [T, E], data_offsets: [0, 60] } };
    const file = safetensors(`${JSON.stringify(header)} `, bytesOf(values));
    expect((file.length - 60) % 4).not.toBe(0);
    expect(Array.from(parseSafetensors(file).data)).toEqual(Array.from(values));
  });

  test("dtype option converts BF16 to fp32 exactly", () => {
    const r = parseSafetensors(withBias(), { dtype: "f32" });
    expect(r.convertedFrom).toBe("bf16");
    expect(Array.from(Uint16Array.from(r.data as Float32Array, floatToBf16Bits))).toEqual(Array.from(bf16));
  });

  test("parseSafetensorsHeader lists entries and metadata", () => {
    const h = parseSafetensorsHeader(withBias());
    expect(h.metadata).toEqual({ format: "pt" });
    expect(h.entries.map((e) => e.name)).toEqual([
      "model.layers.3.mlp.gate.e_score_correction_bias",
      "model.layers.3.router_logits",
    ]);
  });
});

describe("safetensors: malformed files are clear errors", () => {
  const entry = (over: Record<string, unknown> = {}) => ({
    logits: { dtype: "F32", shape: [T, E], data_offsets: [0, 60], ...over },
  });

  test("too short for the length prefix", () => {
    expectValidation(() => parseSafetensors(new Uint8Array(5)), /too short.*truncated/);
  });
  test("header length beyond the file", () => {
    expectValidation(
      () => parseSafetensors(safetensors(entry(), bytesOf(values), { lengthField: 10_000n })),
      /says 10000 bytes but only .* truncated/,
    );
  });
  test("absurd header length (2^63)", () => {
    expectValidation(
      () => parseSafetensors(safetensors(entry(), bytesOf(values), { lengthField: 2n ** 63n })),
      /at most 100000000/,
    );
  });
  test("header is not JSON / not an object", () => {
    expectValidation(() => parseSafetensors(safetensors("{not json", bytesOf(values))), /not valid JSON/);
    expectValidation(() => parseSafetensors(safetensors("[1,2,3]", bytesOf(values))), /not a JSON object/);
    expectValidation(() => parseSafetensors(safetensors("null", bytesOf(values))), /not a JSON object/);
  });
  test("invalid UTF-8 in the header", () => {
    const file = safetensors(JSON.stringify(entry()), bytesOf(values));
    file[10] = 0xff;
    expectValidation(() => parseSafetensors(file), /not valid JSON/);
  });
  test("truncated data", () => {
    const file = safetensors(entry(), bytesOf(values));
    expectValidation(
      () => parseSafetensors(file.subarray(0, file.length - 1)),
      /claims bytes 0\.\.60.*only 59.*truncated/,
    );
  });
  test("header lies: data_offsets span fewer bytes than the shape needs", () => {
    expectValidation(
      () => parseSafetensors(safetensors(entry({ data_offsets: [0, 40] }), bytesOf(values))),
      /needs 60 bytes, but its data_offsets span 40/,
    );
  });
  test("header lies: shape larger than the data", () => {
    expectValidation(
      () => parseSafetensors(safetensors(entry({ shape: [30, E] }), bytesOf(values))),
      /needs 600 bytes, but its data_offsets span 60/,
    );
  });
  test("header lies: offsets past the end of the file", () => {
    expectValidation(
      () => parseSafetensors(safetensors(entry({ data_offsets: [40, 100] }), bytesOf(values))),
      /claims bytes 40\.\.100.*only 60/,
    );
  });
  test("header lies about a tensor that is not the one read", () => {
    const header = {
      ...entry(),
      other: { dtype: "F32", shape: [1000], data_offsets: [0, 4000] },
    };
    expectValidation(
      () => parseSafetensors(safetensors(header, bytesOf(values)), { tensor: "logits" }),
      /"other"|other F32/,
    );
  });
  test.each([
    ["begin > end", { data_offsets: [60, 0] }],
    ["negative offset", { data_offsets: [-4, 56] }],
    ["fractional offset", { data_offsets: [0, 59.5] }],
    ["one offset", { data_offsets: [60] }],
    ["no dtype", { dtype: undefined }],
    ["shape not a list", { shape: "3x5" }],
    ["negative dimension", { shape: [-3, E] }],
  ])("bad entry: %s", (_, over) => {
    expectValidation(() => parseSafetensors(safetensors(entry(over), bytesOf(values))), /tensor "logits"/);
  });
  test("wrong dtype", () => {
    const file = safetensors(entry({ dtype: "F64", data_offsets: [0, 120] }), concat(bytesOf(values), bytesOf(values)));
    expectValidation(() => parseSafetensors(file), /dtype F64; logits must be F32, F16 or BF16/);
    const ints = safetensors(entry({ dtype: "I32" }), bytesOf(values));
    expectValidation(() => parseSafetensors(ints), /dtype I32/);
  });
  test("wrong shape: 3-D", () => {
    expectValidation(
      () => parseSafetensors(safetensors(entry({ shape: [1, T, E] }), bytesOf(values))),
      /must be 2-D.*reshape/,
    );
  });
  test("no tensors, ambiguous tensors, unknown name: the message lists what is there", () => {
    expectValidation(() => parseSafetensors(safetensors({}, new Uint8Array(0))), /holds no tensors/);
    const two = safetensors(
      {
        a: { dtype: "F32", shape: [T, E], data_offsets: [0, 60] },
        b: { dtype: "F32", shape: [T, E], data_offsets: [0, 60] },
      },
      bytesOf(values),
    );
    expectValidation(() => parseSafetensors(two), /2 2-D tensors.*a F32\[3, 5\], b F32\[3, 5\].*--tensor NAME/);
    expectValidation(() => parseSafetensors(two, { tensor: "c" }), /no tensor named "c".*a F32\[3, 5\]/);
    expect(parseSafetensors(two, { tensor: "b" }).name).toBe("b");
  });
  test("every truncation of a valid file is a ValidationError", () => {
    const file = safetensors(entry(), bytesOf(values));
    for (let n = 0; n < file.length; n++)
      expect({ n, outcome: neverCrashes(() => parseSafetensors(file.subarray(0, n))) }).toEqual({
        n,
        outcome: "rejected",
      });
  });
  test("random bytes never crash", () => {
    let seed = 12345;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 24;
    };
    for (let i = 0; i < 300; i++) {
      const junk = Uint8Array.from({ length: 9 + (i % 64) }, next);
      if (i % 3 === 0) junk.set([i % 40, 0, 0, 0, 0, 0, 0, 0, 0x7b]); // plausible length prefix and '{'
      neverCrashes(() => parseSafetensors(junk));
      neverCrashes(() => parseNpy(junk));
      neverCrashes(() => parseLogitsFile(junk));
    }
  });
});

// ---- files on disk, format sniffing, writers ----------------------------------------------------

describe("reading files", () => {
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "topk-readers-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("readNpy / readSafetensors / readLogitsFile name the file in errors", () => {
    const path = join(dir, "short.npy");
    writeFileSync(path, npy(dict("<f4", "(3, 5)"), bytesOf(values)).subarray(0, 70));
    expectValidation(() => readNpy(path), new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: `));
    expectValidation(() => readLogitsFile(path), /short\.npy: .*truncated/);
  });

  test("a missing file, a directory", () => {
    expectValidation(() => readLogitsFile(join(dir, "nope.npy")), /no such file; check the path/);
    const sub = join(dir, "sub");
    mkdirSync(sub);
    expectValidation(() => readSafetensors(sub), /is a directory/);
  });

  test("readLogitsFile goes by content, not by the file name", () => {
    const misnamed = join(dir, "actually-npy.safetensors");
    writeFileSync(misnamed, npy(dict("<f4", `(${T}, ${E})`), bytesOf(values)));
    expect(Array.from(readLogitsFile(misnamed).data)).toEqual(Array.from(values));
    const other = join(dir, "logits.npy");
    writeFileSync(other, ascii("col1,col2\n1,2\n"));
    expectValidation(() => readLogitsFile(other), /not a NumPy \.npy or safetensors file/);
    expectValidation(() => readLogitsFile(misnamed, { tensor: "x" }), /--tensor\) is for safetensors/);
  });
});

describe("writers", () => {
  test.each(["f32", "f16", "bf16"] as const)("encodeNpy round trip (%s) and numpy's header layout", (dtype) => {
    const data = toLogits(values, dtype);
    const file = encodeNpy(data, [T, E], dtype);
    const headerLength = new DataView(file.buffer).getUint16(8, true);
    expect((10 + headerLength) % 64).toBe(0);
    expect(file[10 + headerLength - 1]).toBe(0x0a);
    const r = parseNpy(file, { dtype });
    expect(Array.from(r.data)).toEqual(Array.from(data));
    expect([r.tokens, r.experts]).toEqual([T, E]);
  });

  test("encodeSafetensors round trip with two tensors and metadata", () => {
    const file = encodeSafetensors(
      {
        logits: { data: toLogits(values, "bf16"), dtype: "bf16", shape: [T, E] },
        bias: { data: values.slice(0, E), dtype: "f32", shape: [E] },
      },
      { note: "ünïcode names are fine" },
    );
    expect(Number(new DataView(file.buffer).getBigUint64(0, true)) % 8).toBe(0);
    expect(Array.from(parseSafetensors(file).data)).toEqual(Array.from(bf16));
    expect(Array.from(parseSafetensors(file, { tensor: "bias" }).data)).toEqual(Array.from(values.subarray(0, E)));
    expect(parseSafetensorsHeader(file).metadata.note).toBe("ünïcode names are fine");
  });

  test("writers reject data that does not fit the shape or dtype", () => {
    expectValidation(() => encodeNpy(values, [4, E], "f32"), /does not hold 15 elements/);
    expectValidation(() => encodeNpy(values, [T, E], "bf16"), /must be a Uint16Array/);
    expectValidation(() => encodeSafetensors({ x: { data: values, dtype: "f32", shape: [2, 2] } }), /does not hold/);
  });

  test("NaN payloads and signed zeros survive a round trip bit for bit", () => {
    const bits = Uint32Array.of(0x7fc00001, 0xffc12345, 0x80000000, 0x00000001, 0x7f800000, 0xff800000);
    const data = new Float32Array(bits.buffer);
    const back = parseNpy(encodeNpy(data, [2, 3], "f32")).data as Float32Array;
    expect(Array.from(new Uint32Array(back.buffer))).toEqual(Array.from(bits));
    const st = parseSafetensors(encodeSafetensors({ x: { data, dtype: "f32", shape: [2, 3] } })).data as Float32Array;
    expect(Array.from(new Uint32Array(st.buffer))).toEqual(Array.from(bits));
  });
});

// ---- routing from a file equals routing the array -----------------------------------------------

describe("routing logits read from files", () => {
  const tokens = 64;
  const experts = 160;
  const topk = 8;
  const source = Float32Array.from(
    { length: tokens * experts },
    (_, i) => Math.sin(i * 0.618) * 2 + Math.cos(i * 0.0137) - (i % experts === 7 ? 30 : 0),
  );
  source[5] = Number.NaN; // NaNs and infinities must route identically too
  source[300] = Number.POSITIVE_INFINITY;
  source[301] = Number.NEGATIVE_INFINITY;
  const bias = Float32Array.from({ length: experts }, (_, e) => ((e * 37) % 11) * 0.004 - 0.02);

  const routeBoth = (file: LogitsTensor, direct: Float32Array | Uint16Array, dtype: Dtype) => {
    using router = createRouter({ experts, topk, dtype, bias, renormalize: true, scale: 2.5, backend: "host" });
    const fromFile = router.route(file.data, { tokens: file.tokens });
    const fromArray = router.route(direct);
    expect(file.tokens).toBe(tokens);
    expect(Array.from(fromFile.indices)).toEqual(Array.from(fromArray.indices));
    expect(Array.from(new Uint32Array(fromFile.weights.buffer))).toEqual(
      Array.from(new Uint32Array(fromArray.weights.buffer)),
    );
  };

  test.each(["f32", "f16", "bf16"] as const)("npy, %s", (dtype) => {
    const direct = toLogits(source, dtype);
    const descr = dtype === "f32" ? "<f4" : dtype === "f16" ? "<f2" : "<u2";
    const file = parseNpy(npy(dict(descr, `(${tokens}, ${experts})`), bytesOf(direct)), { dtype });
    routeBoth(file, direct, dtype);
  });

  test.each([
    ["F32", "f32"],
    ["F16", "f16"],
    ["BF16", "bf16"],
  ] as const)("safetensors, %s", (stDtype, dtype) => {
    const direct = toLogits(source, dtype);
    const file = parseSafetensors(
      safetensors(
        {
          bias: { dtype: "F32", shape: [experts], data_offsets: [0, 4 * experts] },
          router_logits: {
            dtype: stDtype,
            shape: [tokens, experts],
            data_offsets: [4 * experts, 4 * experts + direct.byteLength],
          },
        },
        concat(bytesOf(bias), bytesOf(direct)),
      ),
    );
    routeBoth(file, direct, dtype);
  });
});
