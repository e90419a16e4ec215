// kernel_thread_staged.hpp: the largest batches of 16-bit logits without bias, k <= 8, E = 128
// and 256 (device_backend.hip, ts_thread_staged_pays, says why E = 72..120 stay with the thread
// select kernel) on rows of whole 16-byte vectors (NVIDIA sm_80+; E = 256 where two blocks fit an
// SM, sm_90): ts_thread_route (one thread per token, kernel_thread_select.hpp) on rows that the
// whole block copies into shared memory first, tile by tile, in the order its warps route them.
//
// Why: at T=65536 E128 every kernel that loads its own rows ended about 5 us after the copy rate
// would (H100: 12.2-12.6 us where the bytes need 7.1). Each warp's rows arrive interleaved with
// every other warp's, so most warps wait until late in the batch and route after the loads
// instead of under them (the timeline in BENCHMARKS.md, What limits). Here the block's copies
// (cp.async, 16 bytes a thread) are issued tile-major: all of tile 0 (warp 0's 32 rows), then all
// of tile 1, and so on, each tile completing its own mbarrier. A timeline of this form (H100,
// graph replay, T=65536 E128, one block of 16 routing warps and a copying warp per SM, stamps
// per warp; the probe is not in the repository) has the tiles landing in order from 1.0 to 7.8
// us and each warp done about 2.1 us after its tile landed: the routing of one tile by one warp,
// which is what is left after the last byte. With the launch of launch_thread_staged the benchmark's T=65536 E128 went
// from 12.1-12.5 to 11.2 us (H100; BENCHMARKS.md, optimisation 40). Behind a running grid (a
// dependent launch) each block first asks the L2 for its first tiles' rows, before the wait: a
// block becomes resident as one of the grid before ends, in that grid's tail, where only routing
// is left and HBM is idle, so its first tiles are in the L2 when the wait returns. One tile took the
// benchmark's T=65536 E128 from 11.3 to 10.1 us (H100; BENCHMARKS.md, optimisation 41), and two
// tiles instead of one to about 9.6 (42). At E = 256 the same form took the benchmark's T=65536
// from the vector select kernel's 14.0-14.3 us to 12.1 (H200; BENCHMARKS.md, 56): that kernel's
// groups load their rows in two rounds of one token each, and route the first before the second
// arrives.
//
// The tail: at E = 128 a block's last tile of at most 16 tokens (at T=65536 a block has 166, 6 in
// its last tile) is routed by pairs of lanes (ts_staged_pair_tail): its chain starts after the
// block's last bytes land, and a pair's is about 60% of one thread's. H200, graph replay, bf16
// k=8: T=65536 7.26-7.27 -> 7.09-7.12 us, T=80000 8.23-8.24 -> 7.98-8.00, T=90000 9.34-9.40 ->
// 9.14-9.22. Pairs for a last tile of 17-32 tokens (two warps) lost (T=70000 7.53-7.67 ->
// 7.74-7.84), and so did pairs for the last two or three tiles (BENCHMARKS.md, 58). A last tile
// of fewer than 16 tokens is filled up to 16 from the tile before it (at T=65536 tiles of 32 x 4,
// 22 and 16), so that tile, whose one-thread chain is the tail then, lands earlier: T=65536
// 7.07-7.15 -> 6.93-6.96 us (59).
//
// Shared memory (ts_staged_shape): a block of 8 warps holds its tiles of 32 rows (256 or 512
// bytes), 64 KB at E = 128 and 112 KB at E = 256. The vector c of row r sits at vector place c ^
// (r & 7): a warp's 16-byte reads of one vector index of its 32 rows then fall on 8 different
// 16-byte bank groups per quarter warp instead of one (a row pitch of 256 or 512 bytes puts every
// row's vector c on the same banks).
#ifndef TOPK_SIGMOID_KERNEL_THREAD_STAGED_HPP
#define TOPK_SIGMOID_KERNEL_THREAD_STAGED_HPP

#include "kernel_thread_select.hpp"

constexpr int kStagedBlock = 256;
constexpr int kStagedTiles = kStagedBlock / 32;  // one tile of 32 tokens per warp
// The most tokens one block routes (the launch gives each block at most this many).
constexpr int kStagedTokens = kStagedTiles * 32;

// The kernel's shape for rows of V vectors of 8 logits: V = 16 (E = 128) or 32 (E = 256).
//  - E = 128: a slot of shared memory for each of the block's 8 tiles (8 x 8 KB), 3 blocks per
//    SM on sm_90 (228 KB), 2 on sm_80 (164 KB).
//  - E = 256: 7 slots of 16 KB, 2 blocks per SM on sm_90: an SM's share of T=65536 (496 rows of
//    512 bytes) does not fit at once, so the block's tile 7 goes into slot 0, copied by warp 0
//    once it has routed tile 0 (the first to land), and is routed by warp 7. H200, T=65536 bf16
//    k=8, interleaved, three rounds: 6 slots (tiles 6 and 7 reusing slots 0 and 1) 12.23-12.31 us,
//    7 slots 12.10-12.14.
// kBlocksPerSm is what the compiler leaves registers for; the launch asks the runtime how many
// blocks are resident.
template <int V>
struct ts_staged_shape {
  static_assert(V == 16 || V == 32, "E = 128 or 256");
  static constexpr int kRowBytes = V * 16;
  static constexpr int kSlots = V == 16 ? kStagedTiles : 7;
  static constexpr int kBlocksPerSm = V == 16 ? 3 : 2;
  // The slots' rows, then one 8-byte mbarrier per tile.
  static constexpr unsigned kRowsBytes = static_cast<unsigned>(kSlots * 32 * kRowBytes);
  static constexpr unsigned kSharedBytes = kRowsBytes + kStagedTiles * 8;
};

#if defined(TS_PLATFORM_CUDA)
// The kernel's dynamic shared memory: the rows, then the mbarriers (ts_staged_shape::kSharedBytes).
extern __shared__ __align__(16) unsigned char ts_staged_shared[];

// The shared-memory address of the tiles' mbarriers (after the rows).
template <int V>
__device__ __forceinline__ uint32_t ts_staged_bars(const unsigned char* staged) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(staged)) + ts_staged_shape<V>::kRowsBytes;
}

// mbarrier and cp.async (sm_80+) as PTX: the shared-memory address of each operand.
__device__ __forceinline__ void ts_mbarrier_init(uint32_t bar, uint32_t arrivals) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("mbarrier.init.shared.b64 [%0], %1;" ::"r"(bar), "r"(arrivals) : "memory");
#else
  (void)bar, (void)arrivals;
#endif
}

// Copies 16 bytes from global memory to shared memory asynchronously (cached in the L2 only).
__device__ __forceinline__ void ts_copy16_async(uint32_t dst, const void* src) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(src) : "memory");
#else
  (void)dst, (void)src;
#endif
}

// One arrival on the mbarrier once every copy this thread has issued so far has landed (the
// arrival is one of those mbarrier_init counted: .noinc).
__device__ __forceinline__ void ts_mbarrier_arrive_after_copies(uint32_t bar) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.mbarrier.arrive.noinc.shared.b64 [%0];" ::"r"(bar) : "memory");
#else
  (void)bar;
#endif
}

// Returns once the mbarrier's phase of this parity has completed; its copies are then visible.
// On sm_90 the warp sleeps in try_wait until the phase completes (or the hardware's time limit
// passes, and it asks again); test_wait, the only form sm_80 has, returns at once, so a waiting
// warp spins, taking issue slots from the routing warps of its scheduler. With the copy loop
// below, this took the kernel from 5.72 M to 4.73 M warp instructions at T=65536 (H200, Nsight
// Compute; BENCHMARKS.md 50).
__device__ __forceinline__ void ts_mbarrier_wait(uint32_t bar, uint32_t parity) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "WAIT%=:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT%=;\n"
      "}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "WAIT%=:\n"
      "mbarrier.test_wait.parity.shared.b64 done, [%0], %1;\n"
      "@!done bra WAIT%=;\n"
      "}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
#else
  (void)bar, (void)parity;
#endif
}

// A block's share of the batch: block b routes the tokens [first, first + count), first = b * P
// with P = ceil(T / gridDim.x) <= kStagedTokens (launch_thread_staged), in tiles of 32.
struct ts_staged_block {
  int64_t first;
  int count;  // <= 0: nothing (the grid's last blocks when gridDim.x * P passes T)
  int tiles;
};

// Before ts_await_prior_grid: the block's share, and one mbarrier per tile that holds tokens,
// initialised for every thread's arrival, or the staging warp's 32 for a tile that reuses a slot
// (no arrival may be left pending on a tile nobody waits for: the block's shared memory goes to
// the next block when it ends). Done before the wait so
// that a block which starts behind the grid before it issues its first copies as soon as the wait
// returns (H100, T=65536 E128, the benchmark's bandwidth section, three rounds each: 11.73-11.76
// us with this after the wait). Where the launch asks for it (l2_hint tiles), the L2 hint for the
// first l2_hint tiles' rows too (ts_prefetch_row_l2, eight threads a row: it reads nothing into
// the kernel). H100, graph replay, bf16 k=8, rows and outputs rotating through HBM, interleaved,
// two rounds, no hint / the first tile: T=65536 11.29-11.35 -> 10.11-10.21 us, T=63360
// 10.81-10.88 -> 9.58-9.69, T=98304 15.14-15.19 -> 14.06-14.11, T=131072 19.57-19.59 ->
// 18.99-19.00. Two tiles took T=65536 to 9.56 us, three (where blocks hold 8 tiles) T=131072 to
// 17.14 (launch_thread_staged has the table). Hinting all of the block's rows gained less
// (T=65536 10.72 us), its copies then following the hints' requests for the same lines.
template <int V>
__device__ __forceinline__ ts_staged_block ts_staged_begin(const ts_kernel_args& a, uint32_t bars) {
  const int64_t per_block = (a.tokens + gridDim.x - 1) / gridDim.x;
  ts_staged_block b;
  b.first = static_cast<int64_t>(blockIdx.x) * per_block;
  const int64_t left = a.tokens - b.first;
  b.count = static_cast<int>(left <= 0 ? 0 : left < per_block ? left : per_block);
  b.tiles = (b.count + 31) / 32;
  if (static_cast<int>(threadIdx.x) < b.tiles)
    ts_mbarrier_init(bars + 8u * threadIdx.x,
                     static_cast<int>(threadIdx.x) < ts_staged_shape<V>::kSlots ? kStagedBlock : 32);
  if (a.l2_hint != 0) {  // uniform
    const int hinted = b.count < 32 * a.l2_hint ? b.count : 32 * a.l2_hint;
    const uint16_t* const logits = static_cast<const uint16_t*>(a.logits) + b.first * a.row_stride;
    for (int r = static_cast<int>(threadIdx.x) >> 3; r < hinted; r += kStagedBlock / 8)
      ts_prefetch_row_l2(logits + r * a.row_stride, static_cast<int64_t>(a.experts) * 2,
                         static_cast<int>(threadIdx.x) & 7, 8);
  }
  __syncthreads();
  return b;
}

// Vector v of a staged row (16 bytes, at its swizzled place v ^ place, place = the row's r & 7).
__device__ __forceinline__ uint4 ts_staged_vector(const unsigned char* row, int place, int v) {
  return *reinterpret_cast<const uint4*>(row + ((v ^ place) << 4));
}

// A last tile of at most 16 tokens (from token `first`, its rows at `rows`, E = 128), routed by
// pairs of lanes: lanes 2j and 2j + 1 its row j (ts_pair_route; the pairs past the tile route
// row 0 and store nothing). A pair's chain is about 640 instructions where one thread's is about
// 1060 (sm_90), and this tile's chain starts only once the block's last rows have landed. Not
// inlined, so that the one-thread route keeps its schedule: inlined, the batches whose tiles all
// take that route lost up to 1% (H200, graph replay, bf16 k=8, T=98304: 9.63-9.66 -> 9.75 us).
template <int Dtype, bool K8>
__device__ __noinline__ void ts_staged_pair_tail(ts_thread_outputs out, bool vector_stores, int64_t first,
                                                 const unsigned char* rows, int in_tile) {
  const int pair = static_cast<int>(threadIdx.x & 31) >> 1;
  const int row = pair < in_tile ? pair : 0;
  const unsigned char* const staged_row = rows + row * ts_staged_shape<16>::kRowBytes;
  const int place = row & 7;
  ts_pair_route<Dtype, K8>(out, first + row, pair < in_tile, vector_stores,
                           [staged_row, place](int v) { return ts_staged_vector(staged_row, place, v); });
}

// Warp w routes the block's tile w, lane l the tile's row l. K8: k = 8 and both outputs 16-byte
// aligned (launch_thread_staged), the common router call, with the epilogue's tests folded away.
// V: the row's vectors (ts_staged_shape), at compile time, so the route's tests of the row's
// length fold away.
template <int Dtype, bool K8, int V>
__global__ void __launch_bounds__(kStagedBlock, ts_staged_shape<V>::kBlocksPerSm)
    ts_thread_staged_kernel(const ts_kernel_args a) {
  const ts_staged_block block = ts_staged_begin<V>(a, ts_staged_bars<V>(ts_staged_shared));
  ts_await_prior_grid(a.early_dependents);
  using Shape = ts_staged_shape<V>;
  static_assert(Dtype != TS_DTYPE_F32, "16-bit logits: 32-bit keys");
  if (block.count == 0) return;  // uniform per block
  const int64_t first = block.first;
  const int count = block.count, tiles = block.tiles;
  const uint32_t rows = static_cast<uint32_t>(__cvta_generic_to_shared(ts_staged_shared));
  const uint32_t bars = ts_staged_bars<V>(ts_staged_shared);
  const uint16_t* const logits = static_cast<const uint16_t*>(a.logits);

  // The copies of the tiles that have a slot of their own, tile-major: thread t copies vector c =
  // t % V of rows t / V + p * (256 / V) of each tile (of its 32 x V), V threads per row, so a
  // warp's copy instruction reads whole rows' contiguous bytes. The places step by a whole tile
  // from one tile to the next, so the loop only adds: computed afresh for every tile, the copies'
  // addresses, bounds and swizzles took about 55 instructions a tile in every thread (sm_80 SASS,
  // E = 128), while a thread routes in about 1400.
  constexpr int kRowsPerPass = kStagedBlock / V, kPasses = 32 / kRowsPerPass;
  static_assert(kRowsPerPass % 8 == 0, "a pass's rows share their swizzle");
  const int c = static_cast<int>(threadIdx.x) % V, row = static_cast<int>(threadIdx.x) / V;
  const uint16_t* src = logits + (first + row) * a.row_stride + c * 8;
  const int64_t src_pass = kRowsPerPass * a.row_stride, src_tile = 32 * a.row_stride;
  // Rows row + p * kRowsPerPass share row & 7, so their swizzled places differ by whole passes.
  uint32_t dst = rows + static_cast<uint32_t>(row * Shape::kRowBytes + ((c ^ (row & 7)) << 4));
  constexpr uint32_t kDstPass = kRowsPerPass * Shape::kRowBytes, kDstTile = 32u * Shape::kRowBytes;
  // E = 128: a last tile of fewer than 16 tokens takes `moved` more from the tile before it, so
  // that it has 16 (the pairs' warp) and the tile before lands earlier (the top of the file, 59).
  const int last_tokens = count - 32 * (tiles - 1);
  const int moved = V == 16 && tiles >= 2 && last_tokens < 16 ? 16 - last_tokens : 0;
  const int own = tiles < Shape::kSlots ? tiles : Shape::kSlots;
  for (int tile = 0, local = row; tile < own; ++tile, local += 32) {
    int limit = count;  // this tile's rows are those with local + p * kRowsPerPass below it
    if (moved != 0 && tile == tiles - 2) limit = count - 16;
    if (moved != 0 && tile == tiles - 1) {
      limit = count + moved;
      src -= moved * a.row_stride;
    }
#pragma unroll
    for (int p = 0; p < kPasses; ++p)
      if (local + p * kRowsPerPass < limit) ts_copy16_async(dst + p * kDstPass, src + p * src_pass);
    ts_mbarrier_arrive_after_copies(bars + 8u * static_cast<uint32_t>(tile));
    src += src_tile;
    dst += kDstTile;
  }

  const int warp = static_cast<int>(threadIdx.x) >> 5, lane = static_cast<int>(threadIdx.x) & 31;
  if (warp >= tiles) return;
  ts_mbarrier_wait(bars + 8u * static_cast<uint32_t>(warp), 0u);
  // This warp's tile: the bounds the copy loop above gave its rows (`moved`). Written here a second
  // time on purpose: one helper for both cost E = 128 1.5% (BENCHMARKS.md, Not kept after 60).
  const int tile_start = warp * 32 - (warp == tiles - 1 ? moved : 0);
  const int tile_end = moved != 0 && warp == tiles - 2 ? count - 16 : count;
  const int local_token = tile_start + lane;
  const int slot = warp < Shape::kSlots ? warp : warp - Shape::kSlots;
  const unsigned char* const staged_row = ts_staged_shared + (slot * 32 + lane) * Shape::kRowBytes;
  const int place = lane & 7;
  const auto load = [staged_row, place](int v) { return ts_staged_vector(staged_row, place, v); };
  if constexpr (Shape::kSlots >= kStagedTiles) {
    // A last tile of at most 16 tokens is routed by pairs of lanes (ts_staged_pair_tail).
    if (const int in_tile = count - tile_start; in_tile <= 16) {  // uniform per warp
      ts_staged_pair_tail<Dtype, K8>(ts_thread_outputs{a.weights, a.indices, a.k, a.renormalize, a.scale},
                                     K8 || ts_thread_vector_stores(a), first + tile_start,
                                     ts_staged_shared + slot * 32 * Shape::kRowBytes, in_tile);
      return;
    }
    if (local_token >= tile_end) return;
    ts_thread_route<Dtype, K8, V>(a, V, first + local_token, K8 || ts_thread_vector_stores(a), load);
  } else {
    if (local_token < count)
      ts_thread_route<Dtype, K8, V>(a, V, first + local_token, K8 || ts_thread_vector_stores(a), load);
    // The tile that reuses this warp's slot (tile 7, in warp 0's): its rows copied by this warp,
    // lane l vector l of each (V = 32: a copy instruction reads one whole row), once every lane
    // is done with the slot.
    const int next = warp + Shape::kSlots;
    if (warp < Shape::kSlots && next < tiles) {
      static_assert(V == 32, "a lane per vector");
      __syncwarp();
      const uint16_t* next_src = logits + (first + next * 32) * a.row_stride + lane * 8;
      const uint32_t next_dst = rows + static_cast<uint32_t>(slot * 32 * Shape::kRowBytes);
#pragma unroll 4
      for (int j = 0; j < 32; ++j)
        if (next * 32 + j < count)
          ts_copy16_async(next_dst + static_cast<uint32_t>(j * Shape::kRowBytes + ((lane ^ (j & 7)) << 4)),
                          next_src + j * a.row_stride);
      ts_mbarrier_arrive_after_copies(bars + 8u * static_cast<uint32_t>(next));
    }
  }
}
#endif  // TS_PLATFORM_CUDA

#endif  // TOPK_SIGMOID_KERNEL_THREAD_STAGED_HPP
