// tests/aliasing.test.ts: outputs that alias the inputs are refused before anything is written,
// and the dispatch entry point's host fallback names itself in its messages.

import { ptr } from "bun:ffi";
import { expect, test } from "bun:test";
import { native } from "../ffi/library.ts";
import { Status } from "../ffi/status.ts";

const lib = native();
const s = lib.symbols;

test("weights or indices overlapping the logits or the bias are refused, nothing written", () => {
  const buffer = new Float32Array(64 + 16);
  buffer.fill(0.25);
  const before = Float32Array.from(buffer);
  const logits = buffer.subarray(0, 64); // 2 tokens x 32 experts
  const weights = buffer.subarray(60, 68); // overlaps the last logits
  const indices = new Int32Array(8);
  const host = lib.deviceCount > 0 ? s.topk_sigmoid_host : s.topk_sigmoid;
  expect(host(ptr(logits), 0, 2, 32, 32, null, 0, 4, 0, 1, ptr(weights), ptr(indices), null)).toBe(
    Status.TS_ERR_INVALID_ARGUMENT,
  );
  expect(s.topk_sigmoid_last_error()?.toString()).toMatch(/overlaps the logits/);
  expect(Array.from(buffer)).toEqual(Array.from(before));

  const bias = new Float32Array(40);
  const biasWeights = bias.subarray(30, 38); // overlaps bias[30..31]
  expect(
    s.topk_sigmoid_host(ptr(logits), 0, 2, 32, 32, ptr(bias), 32, 4, 0, 1, ptr(biasWeights), ptr(indices), null),
  ).toBe(Status.TS_ERR_INVALID_ARGUMENT);
  expect(s.topk_sigmoid_last_error()?.toString()).toMatch(/overlaps the bias/);
});

test("topk_sigmoid's host fallback reports errors as topk_sigmoid", () => {
  if (lib.deviceCount > 0) return; // with a GPU, topk_sigmoid routes on the device instead
  const logits = new Float32Array(8);
  expect(
    s.topk_sigmoid(ptr(logits), 0, 1, 8, 8, null, 0, 0, 0, 1, ptr(new Float32Array(1)), ptr(new Int32Array(1)), null),
  ).toBe(Status.TS_ERR_INVALID_K);
  expect(s.topk_sigmoid_last_error()?.toString()).toMatch(/^topk_sigmoid: k = 0/);
});
