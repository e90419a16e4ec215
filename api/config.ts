// api/config.ts: the router configuration, validated once with zod when a router is created.
import { z } from "zod";
import { Limits } from "../ffi/status.ts";

/** The backends a router can be asked for: `auto` lets the library pick for the current device. */
export const backendNames = ["auto", "gfx9", "warp", "ck", "host"] as const;
/** One of {@link backendNames}. */
export type BackendChoice = (typeof backendNames)[number];

/** The zod schema every router configuration is parsed with (defaults filled in, cross-field checks). */
export const RouterConfigSchema = z
  .object({
    /** Number of experts E (columns of the logits). */
    experts: z.number().int().min(1).max(Limits.TOPK_SIGMOID_MAX_EXPERTS),
    /** Experts chosen per token, 1 <= topk <= min(experts, 32). */
    topk: z.number().int().min(1).max(Limits.TOPK_SIGMOID_MAX_K),
    /** Logits element type. */
    dtype: z.enum(["f32", "f16", "bf16"]).default("f32"),
    /** Optional fp32 correction bias, one per expert: ranks by sigmoid(x) + bias, weights exclude it. */
    bias: z
      .union([
        z.custom<Float32Array>((v) => v instanceof Float32Array, {
          message: "bias must be a Float32Array or number[]",
        }),
        z.array(z.number()),
      ])
      .optional()
      .transform((b) => (b === undefined ? undefined : Float32Array.from(b))),
    /** Divide the k weights by their sum (rank order) before scaling. */
    renormalize: z.boolean().default(false),
    /** Routed scaling factor applied last. Must be finite. */
    scale: z.number().finite().default(1),
    /** Elements between consecutive token rows; defaults to experts. */
    rowStride: z.number().int().positive().optional(),
    /** Kernel: auto picks the best for the current device (host when there is none). */
    backend: z.enum(backendNames).default("auto"),
  })
  .superRefine((c, ctx) => {
    if (c.topk > c.experts)
      ctx.addIssue({ code: "custom", path: ["topk"], message: `topk (${c.topk}) must be <= experts (${c.experts})` });
    if (c.bias && c.bias.length !== c.experts)
      ctx.addIssue({
        code: "custom",
        path: ["bias"],
        message: `bias has ${c.bias.length} values; it needs one per expert (${c.experts})`,
      });
    if (c.rowStride !== undefined && c.rowStride < c.experts)
      ctx.addIssue({
        code: "custom",
        path: ["rowStride"],
        message: `rowStride (${c.rowStride}) must be >= experts (${c.experts})`,
      });
  });

/** What createRouter accepts (defaults filled in by the schema). */
export type RouterConfigInput = z.input<typeof RouterConfigSchema>;
/** A validated router configuration. */
export type RouterConfig = z.output<typeof RouterConfigSchema>;
