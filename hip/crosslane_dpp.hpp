// crosslane_dpp.hpp: PLACEHOLDER until the DPP policy lands (same interface as ShflPolicy).
#ifndef TOPK_SIGMOID_CROSSLANE_DPP_HPP
#define TOPK_SIGMOID_CROSSLANE_DPP_HPP
#include "crosslane_shfl.hpp"
using DppPolicy = ShflPolicy;
#endif
