// examples/lib/presets.ts: router settings of real sigmoid-routed MoE models, from their published
// config.json files (n_routed_experts / num_local_experts, num_experts_per_tok, norm_topk_prob,
// routed_scaling_factor, and whether the gate has an e_score_correction_bias).

/** One model's router settings. */
export interface Preset {
  /** The --model name. */
  name: string;
  /** The model, as people call it. */
  title: string;
  experts: number;
  topk: number;
  /** Whether the model ranks experts with a learned correction bias (e_score_correction_bias). */
  bias: boolean;
  renormalize: boolean;
  scale: number;
  /** Where this preset differs from the model's own routing, said plainly. */
  caveat?: string;
}

export const presets: readonly Preset[] = [
  {
    name: "deepseek-v3",
    title: "DeepSeek-V3 / R1",
    experts: 256,
    topk: 8,
    bias: true,
    renormalize: true,
    scale: 2.5,
    caveat:
      "DeepSeek-V3 first keeps 4 of 8 expert groups per token (n_group 8, topk_group 4); this router takes the plain top 8 of all 256",
  },
  { name: "kimi-k2", title: "Kimi-K2", experts: 384, topk: 8, bias: true, renormalize: true, scale: 2.827 },
  { name: "minimax-m2", title: "MiniMax-M2", experts: 256, topk: 8, bias: true, renormalize: true, scale: 1 },
  { name: "glm-4.5", title: "GLM-4.5", experts: 160, topk: 8, bias: true, renormalize: true, scale: 2.5 },
  { name: "llama-4", title: "Llama 4 Maverick", experts: 128, topk: 1, bias: false, renormalize: false, scale: 1 },
  {
    name: "e512-top10",
    title: "synthetic, Qwen3-Next-sized",
    experts: 512,
    topk: 10,
    bias: false,
    renormalize: false,
    scale: 1,
  },
];

export const defaultPreset = "deepseek-v3";

/** The preset called `name`, or undefined. */
export const findPreset = (name: string): Preset | undefined => presets.find((p) => p.name === name.toLowerCase());
