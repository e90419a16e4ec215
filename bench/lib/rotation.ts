// bench/lib/rotation.ts: how many input buffers to rotate through and how many calls make one
// timed sample. Pure arithmetic (no GPU), shared by the GPU runner, the PyTorch job list and
// the dry run's estimate.
import type { BenchOptions } from "./options.ts";
import { type Config, floorBytes, inputBytes, outputBytes } from "./plan.ts";

const MiB = 1024 * 1024;

/**
 * Rotating slots: enough copies of the input that cycling through them moves rotateMiB of
 * logits, so an input is out of L2 by the time it comes round again. Inputs of rotateMiB or more
 * need one slot; tiny inputs are capped at maxSlots (they then sit in L2, as a router's input
 * does right after the gate GEMM wrote it).
 */
export function slotsFor(c: Config, o: Pick<BenchOptions, "rotateMiB" | "maxSlots">): number {
  const bytes = Math.max(1, inputBytes(c));
  return Math.max(1, Math.min(o.maxSlots, Math.ceil((o.rotateMiB * MiB) / bytes)));
}

export const workingSetBytes = (c: Config, slots: number): number => slots * (inputBytes(c) + outputBytes(c));

/** A rough per-call estimate (us), only used to size samples and to estimate run time. */
export function estimateUs(c: Config, who: "ours" | "ck" | "torch"): number {
  const bytes = floorBytes(c);
  switch (who) {
    case "ours":
      return Math.max(2, bytes / 2e6); // 2 TB/s effective
    case "ck":
      return Math.max(3, bytes / 0.4e6);
    case "torch":
      return Math.max(12, bytes / 0.25e6) * (c.topk > 8 ? 1.5 : 1);
  }
}

/** Calls per sample: about sampleUs of GPU work, a multiple of slots (every slot equally often). */
export function callsFor(slots: number, estUs: number, o: Pick<BenchOptions, "sampleUs" | "maxCalls">): number {
  let calls = Math.max(2, slots, Math.ceil(o.sampleUs / estUs));
  calls = Math.ceil(calls / slots) * slots;
  if (calls > o.maxCalls) calls = Math.max(slots, Math.floor(o.maxCalls / slots) * slots);
  return calls;
}
