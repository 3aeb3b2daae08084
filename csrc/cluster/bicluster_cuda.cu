// CUDA implementation of MatrixBackend (bicluster.hpp): every pass over the big matrix runs on the
// device (products with the thin matrix as shared-memory tiled split-K kernels, normalisation passes as
// row- and column-wise reductions); the l×l factorisations stay on the host (linalg.cpp). Partial sums
// are written per block and added in a fixed order, so results are reproducible on a given GPU.
#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <string>
#include <limits>

#include "cluster/bicluster.hpp"
#include "cluster/kmeans.hpp"
#include "cluster/linalg_cuda.cuh"

namespace cnnvis {
namespace {

using cuda_detail::ceil_div;
using cuda_detail::DevBuf;

constexpr int kBM = 64;  // rows (ax) or columns (atw) of A per block
constexpr int kBK = 32;  // the other dimension of A's shared tile
constexpr int kFlushTiles = 32;  // tiles summed in T before adding into double (1024 products)

// The shared steps of the two tiled products below. Each thread holds TM × 4 accumulators in T, flushed
// into double every kFlushTiles tiles.
// acc[t][c] += a_col[t · a_step] · v[c]: one k-step of the thread's tile (a_col in shared memory).
template <typename T, int TM>
__device__ __forceinline__ void tile_fma(const T* a_col, int a_step, const T* v, T (&acc)[TM][4]) {
  T vv[4];
#pragma unroll
  for (int c = 0; c < 4; ++c) vv[c] = v[c];
#pragma unroll
  for (int t = 0; t < TM; ++t) {
    const T av = a_col[t * a_step];
#pragma unroll
    for (int c = 0; c < 4; ++c) acc[t][c] += av * vv[c];
  }
}

template <typename T, int TM>
__device__ __forceinline__ void flush_tiles(int& tiles, T (&acc)[TM][4], double (&accd)[TM][4]) {
  if (++tiles == kFlushTiles) {
    for (int t = 0; t < TM; ++t)
      for (int c = 0; c < 4; ++c) accd[t][c] += acc[t][c], acc[t][c] = T(0);
    tiles = 0;
  }
}

// out rows first .. first + TM - 1 (those below limit), columns cg·4 .. cg·4 + 3 of an (· × LP) partial.
template <typename T, int TM, int LP>
__device__ __forceinline__ void store_tile(double* out, int64_t first, int64_t limit, int cg,
                                           const T (&acc)[TM][4], const double (&accd)[TM][4]) {
  for (int t = 0; t < TM; ++t) {
    const int64_t g = first + t;
    if (g < limit)
      for (int c = 0; c < 4; ++c) out[g * LP + cg * 4 + c] = accd[t][c] + acc[t][c];
  }
}

// sh[r][c] = thin[(r0 + r) * LP + c] for the kBK rows from r0, zeros from `end` on: the thin operand's
// tile, the same in both products (256 threads).
template <typename T, int LP>
__device__ __forceinline__ void load_thin_tile(T (&sh)[kBK][LP], const T* __restrict__ thin, int64_t r0, int64_t end,
                                               int tid) {
  for (int e = tid; e < kBK * LP; e += 256) {
    const int r = e / LP, c = e % LP;
    sh[r][c] = r0 + r < end ? thin[(r0 + r) * LP + c] : T(0);
  }
}

// ypart[s] (m × LP) = A[:, k-slice s] · xs[k-slice s, :]. Thread tile: TM rows × 4 columns.
template <typename T, int LP>
__global__ void __launch_bounds__(256) ax_kernel(const T* __restrict__ a, int64_t m, int64_t n,
                                                 const T* __restrict__ xs, int64_t k_per_split,
                                                 double* __restrict__ ypart) {
  constexpr int CG = LP / 4, TM = kBM * CG / 256;
  static_assert(kBM * CG % 256 == 0 && TM >= 1, "256 threads must tile BM rows x LP columns exactly");
  __shared__ T as[kBM][kBK + 1];
  __shared__ T xsh[kBK][LP];
  const int tid = threadIdx.x, cg = tid % CG, rg = tid / CG;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kBM;
  const int64_t k_begin = blockIdx.y * k_per_split;
  const int64_t k_end = k_begin + k_per_split < n ? k_begin + k_per_split : n;
  T acc[TM][4] = {};
  double accd[TM][4] = {};
  int tiles = 0;
  for (int64_t k0 = k_begin; k0 < k_end; k0 += kBK) {
    for (int e = tid; e < kBM * kBK; e += 256) {
      const int r = e / kBK, c = e % kBK;
      const int64_t gr = row0 + r, gk = k0 + c;
      as[r][c] = (gr < m && gk < k_end) ? a[gr * n + gk] : T(0);
    }
    load_thin_tile<T, LP>(xsh, xs, k0, k_end, tid);
    __syncthreads();
#pragma unroll 8
    for (int kk = 0; kk < kBK; ++kk) tile_fma<T, TM>(&as[rg * TM][kk], kBK + 1, &xsh[kk][cg * 4], acc);
    __syncthreads();
    flush_tiles<T, TM>(tiles, acc, accd);
  }
  store_tile<T, TM, LP>(ypart + static_cast<int64_t>(blockIdx.y) * m * LP, row0 + rg * TM, m, cg, acc, accd);
}

// zpart[s] (n × LP) = A[i-slice s, :]^T · w[i-slice s, :]. Thread tile: TM columns of A × 4 outputs.
template <typename T, int LP>
__global__ void __launch_bounds__(256) atw_kernel(const T* __restrict__ a, int64_t m, int64_t n,
                                                  const T* __restrict__ w, int64_t i_per_split,
                                                  double* __restrict__ zpart) {
  constexpr int CG = LP / 4, TM = kBM * CG / 256;
  static_assert(kBM * CG % 256 == 0 && TM >= 1, "256 threads must tile BM columns x LP outputs exactly");
  __shared__ T as[kBK][kBM + 1];
  __shared__ T wsh[kBK][LP];
  const int tid = threadIdx.x, cg = tid % CG, jg = tid / CG;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kBM;
  const int64_t i_begin = blockIdx.y * i_per_split;
  const int64_t i_end = i_begin + i_per_split < m ? i_begin + i_per_split : m;
  T acc[TM][4] = {};
  double accd[TM][4] = {};
  int tiles = 0;
  for (int64_t i0 = i_begin; i0 < i_end; i0 += kBK) {
    for (int e = tid; e < kBK * kBM; e += 256) {
      const int r = e / kBM, c = e % kBM;
      const int64_t gi = i0 + r, gj = col0 + c;
      as[r][c] = (gi < i_end && gj < n) ? a[gi * n + gj] : T(0);
    }
    load_thin_tile<T, LP>(wsh, w, i0, i_end, tid);
    __syncthreads();
#pragma unroll 8
    for (int r = 0; r < kBK; ++r) tile_fma<T, TM>(&as[r][jg * TM], 1, &wsh[r][cg * 4], acc);
    __syncthreads();
    flush_tiles<T, TM>(tiles, acc, accd);
  }
  store_tile<T, TM, LP>(zpart + static_cast<int64_t>(blockIdx.y) * n * LP, col0 + jg * TM, n, cg, acc, accd);
}

// out[i] = Σ_s part[s][i] in split order.
__global__ void sum_splits(const double* __restrict__ part, int splits, int64_t count, double* __restrict__ out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= count) return;
  double s = 0.0;
  for (int p = 0; p < splits; ++p) s += part[p * count + i];
  out[i] = s;
}

// xs (n × LP, T) = dc ∘ x (n × l, double), zero padded; also dcx (n × l, double) for the sums.
template <typename T>
__global__ void prep_x(const double* __restrict__ x, const double* __restrict__ dc, int64_t n, int l, int lp,
                       T* __restrict__ xs, double* __restrict__ dcx) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= n * lp) return;
  const int64_t j = e / lp;
  const int c = static_cast<int>(e % lp);
  const double v = c < l ? dc[j] * x[j * l + c] : 0.0;
  xs[e] = static_cast<T>(v);
  if (c < l) dcx[j * l + c] = v;
}

// y (m × l) = dr ∘ (yraw + p·colsum + qx); w (m × LP, T) = dr ∘ y, zero padded.
template <typename T>
__global__ void epilogue_y(const double* __restrict__ yraw, const double* __restrict__ dr,
                           const double* __restrict__ p, const double* __restrict__ colsum,
                           const double* __restrict__ qx, int64_t m, int l, int lp, double* __restrict__ y,
                           T* __restrict__ w) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= m * lp) return;
  const int64_t i = e / lp;
  const int c = static_cast<int>(e % lp);
  if (c >= l) {
    if (w) w[e] = T(0);
    return;
  }
  const double yv = dr[i] * (yraw[e] + p[i] * colsum[c] + qx[c]);
  y[i * l + c] = yv;
  if (w) w[e] = static_cast<T>(dr[i] * yv);
}

// z (n × l) = dc ∘ (zraw + pw + q·sw).
__global__ void epilogue_z(const double* __restrict__ zraw, const double* __restrict__ dc,
                           const double* __restrict__ q, const double* __restrict__ pw,
                           const double* __restrict__ sw, int64_t n, int l, int lp, double* __restrict__ z) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= n * l) return;
  const int64_t j = e / l;
  const int c = static_cast<int>(e % l);
  z[e] = dc[j] * (zraw[j * lp + c] + pw[c] + q[j] * sw[c]);
}

// Row passes: one warp per row.
template <typename T>
__global__ void row_stats(const T* __restrict__ a, int64_t m, int64_t n, double* __restrict__ row_sums,
                          double* __restrict__ block_min, unsigned long long* __restrict__ block_bad) {
  __shared__ double smin[8];
  __shared__ unsigned long long sbad[8];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t i = blockIdx.x * 8LL + warp;
  double s = 0.0, mn = INFINITY;
  unsigned long long bad = 0;
  if (i < m)
    for (int64_t j = lane; j < n; j += 32) {
      const double v = static_cast<double>(a[i * n + j]);
      if (!isfinite(v)) ++bad;
      mn = fmin(mn, v);
      s += v;
    }
  for (int off = 16; off > 0; off >>= 1) {
    s += __shfl_down_sync(0xffffffffu, s, off);
    mn = fmin(mn, __shfl_down_sync(0xffffffffu, mn, off));
    bad += __shfl_down_sync(0xffffffffu, bad, off);
  }
  if (lane == 0) {
    if (i < m) row_sums[i] = s;
    smin[warp] = mn;
    sbad[warp] = bad;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double bm = INFINITY;
    unsigned long long bb = 0;
    for (int q = 0; q < 8; ++q) bm = fmin(bm, smin[q]), bb += sbad[q];
    block_min[blockIdx.x] = bm;
    block_bad[blockIdx.x] = bb;
  }
}

template <typename T>
__global__ void sinkhorn_rows(const T* __restrict__ a, int64_t m, int64_t n, double shift, double target,
                              const double* __restrict__ s, double* __restrict__ r, double* __restrict__ fro) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t i = blockIdx.x * 8LL + warp;
  if (i >= m) return;
  double u = 0.0, f = 0.0;
  for (int64_t j = lane; j < n; j += 32) {
    const double t = (static_cast<double>(a[i * n + j]) + shift) * s[j];
    u += t;
    f += t * t;
  }
  for (int off = 16; off > 0; off >>= 1) {
    u += __shfl_down_sync(0xffffffffu, u, off);
    f += __shfl_down_sync(0xffffffffu, f, off);
  }
  if (lane == 0) {
    const double ri = u > 0.0 ? target / u : 0.0;
    r[i] = ri;
    fro[i] = ri * ri * f;
  }
}

// Column pass: part[s][j] = Σ_{i in split s} rw_i (a_ij + shift); one thread per column (coalesced).
template <typename T>
__global__ void col_sums(const T* __restrict__ a, int64_t m, int64_t n, const double* __restrict__ rw,
                         double shift, int64_t i_per_split, double* __restrict__ part) {
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= n) return;
  const int64_t i_begin = blockIdx.y * i_per_split;
  const int64_t i_end = i_begin + i_per_split < m ? i_begin + i_per_split : m;
  double s = 0.0;
  for (int64_t i = i_begin; i < i_end; ++i) s += (rw ? rw[i] : 1.0) * (static_cast<double>(a[i * n + j]) + shift);
  part[blockIdx.y * n + j] = s;
}

template <typename T>
__global__ void log_shifted(const T* __restrict__ a, int64_t count, double shift, T* __restrict__ out) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e < count) out[e] = static_cast<T>(log(static_cast<double>(a[e]) + shift));
}

// out (len × l2) = y (len × l) · s (l × l2), s on the device.
__global__ void mul_small_kernel(const double* __restrict__ y, int64_t len, int l, const double* __restrict__ s,
                                 int l2, double* __restrict__ out) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= len * l2) return;
  const int64_t r = e / l2;
  const int c = static_cast<int>(e % l2);
  double acc = 0.0;
  for (int i = 0; i < l; ++i) acc += y[r * l + i] * s[i * l2 + c];
  out[e] = acc;
}

// Gram partials: block b sums y_i y_i^T over a contiguous range of rows into part[b] (l × l).
__global__ void gram_partial(const double* __restrict__ y, int64_t len, int l, int64_t rows_per_block,
                             double* __restrict__ part) {
  const int64_t begin = blockIdx.x * rows_per_block;
  const int64_t end = begin + rows_per_block < len ? begin + rows_per_block : len;
  for (int e = threadIdx.x; e < l * l; e += blockDim.x) {
    const int p = e / l, q = e % l;
    double s = 0.0;
    for (int64_t i = begin; i < end; ++i) s += y[i * l + p] * y[i * l + q];
    part[blockIdx.x * static_cast<int64_t>(l) * l + e] = s;
  }
}

unsigned grid_for(int64_t count, int threads = 256) { return static_cast<unsigned>(ceil_div(count, threads)); }

// Splits of the reduction dimension so a product launches enough blocks to fill the GPU.
int64_t pick_splits(int64_t tiles, int64_t reduce_len) {
  const int64_t want = 4LL * cuda_detail::sm_count();
  int64_t s = tiles >= want ? 1 : ceil_div(want, tiles);
  return std::max<int64_t>(1, std::min<int64_t>(s, ceil_div(reduce_len, 4 * kBK)));
}

template <typename T>
class CudaMatrix final : public MatrixBackend {
 public:
  CudaMatrix(const T* a, int64_t m, int64_t n, std::uintptr_t stream) : scope_(a, stream), a_(a), w_(a), m_(m), n_(n) {
    std::vector<double> ones_m(m, 1.0), ones_n(n, 1.0), zm(m, 0.0), zn(n, 0.0);
    dr_.upload(ones_m.data(), m);
    dc_.upload(ones_n.data(), n);
    p_.upload(zm.data(), m);
    q_.upload(zn.data(), n);
  }

  int64_t rows() const override { return m_; }
  int64_t cols() const override { return n_; }
  double* alloc(int64_t count) override {
    double* p = nullptr;
    CNNVIS_CUDA_CHECK(cudaMalloc(&p, static_cast<size_t>(std::max<int64_t>(count, 1)) * sizeof(double)));
    return p;
  }
  void release(double* p) override { cudaFree(p); }
  void upload(const double* host, int64_t count, double* dst) override {
    CNNVIS_CUDA_CHECK(cudaMemcpy(dst, host, count * sizeof(double), cudaMemcpyHostToDevice));
  }
  void download(const double* src, int64_t count, double* host) override {
    CNNVIS_CUDA_CHECK(cudaMemcpy(host, src, count * sizeof(double), cudaMemcpyDeviceToHost));
  }
  void copy(const double* src, int64_t count, double* dst) override {
    CNNVIS_CUDA_CHECK(cudaMemcpy(dst, src, count * sizeof(double), cudaMemcpyDeviceToDevice));
  }

  void gram(const double* y, int64_t len, int l, double* g) override {
    const int64_t nblocks = std::max<int64_t>(1, std::min<int64_t>(4LL * cuda_detail::sm_count(), ceil_div(len, 64)));
    const int64_t rows = ceil_div(std::max<int64_t>(len, 1), nblocks);
    scratch_.resize(nblocks * l * l);
    gram_partial<<<static_cast<unsigned>(nblocks), 256>>>(y, len, l, rows, scratch_.get());
    CNNVIS_CUDA_LAUNCHED("gram_partial");
    small_.resize(l * l);
    cuda_detail::sum_partials<<<1, 256>>>(scratch_.get(), static_cast<int>(nblocks), l * l, small_.get());
    CNNVIS_CUDA_LAUNCHED("sum_partials");
    CNNVIS_CUDA_CHECK(cudaMemcpy(g, small_.get(), l * l * sizeof(double), cudaMemcpyDeviceToHost));
  }

  void mul_small(const double* y, int64_t len, int l, const double* s, int l2, double* out) override {
    small_.upload(s, static_cast<int64_t>(l) * l2);
    mul_small_kernel<<<grid_for(len * l2), 256>>>(y, len, l, small_.get(), l2, out);
    CNNVIS_CUDA_LAUNCHED("mul_small_kernel");
  }

  void first_pass(double* min_value, bool* finite, double* row_sums, double* col_sums) override {
    const int64_t blocks = ceil_div(m_, 8);
    DevBuf<double> rs(m_), bmin(blocks);
    DevBuf<unsigned long long> bbad(blocks);
    row_stats<T><<<static_cast<unsigned>(blocks), 256>>>(a_, m_, n_, rs.get(), bmin.get(), bbad.get());
    CNNVIS_CUDA_LAUNCHED("row_stats");
    const auto mins = bmin.download(blocks);
    const auto bads = bbad.download(blocks);
    double mn = std::numeric_limits<double>::infinity();
    unsigned long long bad = 0;
    for (int64_t b = 0; b < blocks; ++b) mn = std::min(mn, mins[b]), bad += bads[b];
    *min_value = mn;
    *finite = bad == 0;
    const auto r = rs.download(m_);
    std::memcpy(row_sums, r.data(), m_ * sizeof(double));
    const auto c = column_sums(a_, nullptr, 0.0);
    std::memcpy(col_sums, c.data(), n_ * sizeof(double));
  }

  void sinkhorn_pass(double shift, double target, const double* s, double* r, double* v, double* fro2) override {
    DevBuf<double> sd, rd(m_), fro(m_);
    sd.upload(s, n_);
    sinkhorn_rows<T><<<static_cast<unsigned>(ceil_div(m_, 8)), 256>>>(a_, m_, n_, shift, target, sd.get(), rd.get(),
                                                                      fro.get());
    CNNVIS_CUDA_LAUNCHED("sinkhorn_rows");
    DevBuf<double> tot(1);
    cuda_detail::weighted_colsum(fro.get(), m_, 1, nullptr, nullptr, tot.get(), scratch_);
    *fro2 = tot.download(1)[0];
    const auto rh = rd.download(m_);
    std::memcpy(r, rh.data(), m_ * sizeof(double));
    const auto vh = column_sums(a_, rd.get(), shift);
    std::memcpy(v, vh.data(), n_ * sizeof(double));
  }

  void make_log(double shift, double* row_sums, double* col_sums) override {
    log_.resize(m_ * n_);
    log_shifted<T><<<grid_for(m_ * n_), 256>>>(a_, m_ * n_, shift, log_.get());
    CNNVIS_CUDA_LAUNCHED("log_shifted");
    w_ = log_.get();
    const int64_t blocks = ceil_div(m_, 8);
    DevBuf<double> rs(m_), bmin(blocks);
    DevBuf<unsigned long long> bbad(blocks);
    row_stats<T><<<static_cast<unsigned>(blocks), 256>>>(w_, m_, n_, rs.get(), bmin.get(), bbad.get());
    CNNVIS_CUDA_LAUNCHED("row_stats");
    const auto r = rs.download(m_);
    std::memcpy(row_sums, r.data(), m_ * sizeof(double));
    const auto c = column_sums(w_, nullptr, 0.0);
    std::memcpy(col_sums, c.data(), n_ * sizeof(double));
  }

  void set_affine(const double* dr, const double* dc, const double* p, const double* q) override {
    std::vector<double> ones_m(m_, 1.0), ones_n(n_, 1.0), zm(m_, 0.0), zn(n_, 0.0);
    dr_.upload(dr ? dr : ones_m.data(), m_);
    dc_.upload(dc ? dc : ones_n.data(), n_);
    p_.upload(p ? p : zm.data(), m_);
    q_.upload(q ? q : zn.data(), n_);
  }

  void power_pass(const double* x, int l, double* y, double* z) override {
    const int lp = padded(l);
    xs_.resize(n_ * lp);
    dcx_.resize(n_ * l);
    prep_x<T><<<grid_for(n_ * lp), 256>>>(x, dc_.get(), n_, l, lp, xs_.get(), dcx_.get());
    CNNVIS_CUDA_LAUNCHED("prep_x");
    vec_.resize(4 * l);
    double* colsum = vec_.get();
    double* qx = colsum + l;
    double* pw = qx + l;
    double* sw = pw + l;
    cuda_detail::weighted_colsum(dcx_.get(), n_, l, nullptr, nullptr, colsum, scratch_);
    cuda_detail::weighted_colsum(dcx_.get(), n_, l, q_.get(), nullptr, qx, scratch_);
    yraw_.resize(m_ * lp);
    product_ax(w_, xs_.get(), lp, yraw_.get());
    wt_.resize(m_ * lp);
    epilogue_y<T><<<grid_for(m_ * lp), 256>>>(yraw_.get(), dr_.get(), p_.get(), colsum, qx, m_, l, lp, y,
                                              z ? wt_.get() : nullptr);
    CNNVIS_CUDA_LAUNCHED("epilogue_y");
    if (!z) return;
    // Σ_i p_i w_i and Σ_i w_i with w_i = dr_i y_i
    cuda_detail::weighted_colsum(y, m_, l, p_.get(), dr_.get(), pw, scratch_);
    cuda_detail::weighted_colsum(y, m_, l, dr_.get(), nullptr, sw, scratch_);
    zraw_.resize(n_ * lp);
    product_atw(w_, wt_.get(), lp, zraw_.get());
    epilogue_z<<<grid_for(n_ * l), 256>>>(zraw_.get(), dc_.get(), q_.get(), pw, sw, n_, l, lp, z);
    CNNVIS_CUDA_LAUNCHED("epilogue_z");
  }

  void project(const double* x, const double* y, int c, double* out_r, double* out_c) override {
    const int lp = padded(c);
    std::vector<T> xh(static_cast<size_t>(n_) * lp, T(0)), yh(static_cast<size_t>(m_) * lp, T(0));
    for (int64_t j = 0; j < n_; ++j)
      for (int q = 0; q < c; ++q) xh[j * lp + q] = static_cast<T>(x[j * c + q]);
    for (int64_t i = 0; i < m_; ++i)
      for (int q = 0; q < c; ++q) yh[i * lp + q] = static_cast<T>(y[i * c + q]);
    xs_.upload(xh.data(), n_ * lp);
    wt_.upload(yh.data(), m_ * lp);
    yraw_.resize(m_ * lp);
    zraw_.resize(n_ * lp);
    product_ax(a_, xs_.get(), lp, yraw_.get());
    product_atw(a_, wt_.get(), lp, zraw_.get());
    const auto yr = yraw_.download(m_ * lp);
    const auto zr = zraw_.download(n_ * lp);
    for (int64_t i = 0; i < m_; ++i)
      for (int q = 0; q < c; ++q) out_r[i * c + q] = yr[i * lp + q];
    for (int64_t j = 0; j < n_; ++j)
      for (int q = 0; q < c; ++q) out_c[j * c + q] = zr[j * lp + q];
  }

 private:
  // The thin width is a compile-time 16, 32 or 64 (whole 4-column groups × 256 threads per tile).
  static_assert(kCudaMaxSubspace == 64, "product_ax / product_atw compile widths 16, 32 and 64");
  static int padded(int l) {
    if (l > kCudaMaxSubspace)
      throw InvalidArgument("the CUDA products support at most " + std::to_string(kCudaMaxSubspace) +
                            " thin columns");
    return l <= 16 ? 16 : l <= 32 ? 32 : kCudaMaxSubspace;
  }

  std::vector<double> column_sums(const T* a, const double* rw, double shift) {
    const int64_t splits = std::max<int64_t>(1, std::min<int64_t>(ceil_div(4LL * cuda_detail::sm_count() * 256, n_), ceil_div(m_, 256)));
    const int64_t per = ceil_div(m_, splits);
    DevBuf<double> part(splits * n_), out(n_);
    col_sums<T><<<dim3(grid_for(n_), static_cast<unsigned>(splits)), 256>>>(a, m_, n_, rw, shift, per, part.get());
    CNNVIS_CUDA_LAUNCHED("col_sums");
    sum_splits<<<grid_for(n_), 256>>>(part.get(), static_cast<int>(splits), n_, out.get());
    CNNVIS_CUDA_LAUNCHED("sum_splits");
    return out.download(n_);
  }

  template <int LP>
  void ax_lp(const T* a, const T* xs, double* yraw) {
    const int64_t tiles = ceil_div(m_, kBM);
    const int64_t splits = pick_splits(tiles, n_);
    const int64_t per = ceil_div(ceil_div(n_, splits), kBK) * kBK;
    double* dst = yraw;
    if (splits > 1) {
      part_.resize(splits * m_ * LP);
      dst = part_.get();
    }
    ax_kernel<T, LP><<<dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(splits)), 256>>>(a, m_, n_, xs, per, dst);
    CNNVIS_CUDA_LAUNCHED("ax_kernel");
    if (splits > 1) {
      sum_splits<<<grid_for(m_ * LP), 256>>>(part_.get(), static_cast<int>(splits), m_ * LP, yraw);
      CNNVIS_CUDA_LAUNCHED("sum_splits");
    }
  }
  template <int LP>
  void atw_lp(const T* a, const T* w, double* zraw) {
    const int64_t tiles = ceil_div(n_, kBM);
    const int64_t splits = pick_splits(tiles, m_);
    const int64_t per = ceil_div(ceil_div(m_, splits), kBK) * kBK;
    double* dst = zraw;
    if (splits > 1) {
      part_.resize(splits * n_ * LP);
      dst = part_.get();
    }
    atw_kernel<T, LP><<<dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(splits)), 256>>>(a, m_, n_, w, per, dst);
    CNNVIS_CUDA_LAUNCHED("atw_kernel");
    if (splits > 1) {
      sum_splits<<<grid_for(n_ * LP), 256>>>(part_.get(), static_cast<int>(splits), n_ * LP, zraw);
      CNNVIS_CUDA_LAUNCHED("sum_splits");
    }
  }
  void product_ax(const T* a, const T* xs, int lp, double* yraw) {
    switch (lp) {
      case 16: return ax_lp<16>(a, xs, yraw);
      case 32: return ax_lp<32>(a, xs, yraw);
      default: return ax_lp<64>(a, xs, yraw);
    }
  }
  void product_atw(const T* a, const T* w, int lp, double* zraw) {
    switch (lp) {
      case 16: return atw_lp<16>(a, w, zraw);
      case 32: return atw_lp<32>(a, w, zraw);
      default: return atw_lp<64>(a, w, zraw);
    }
  }

  cuda_detail::DeviceScope scope_;  // first: restores the caller's device after the buffers are freed
  const T* a_;
  const T* w_;
  int64_t m_, n_;
  DevBuf<T> log_, xs_, wt_;
  DevBuf<double> dr_, dc_, p_, q_, dcx_, vec_, yraw_, zraw_, part_, scratch_, small_;
};

}  // namespace

std::unique_ptr<MatrixBackend> make_cuda_matrix(const float* a_dev, int64_t rows, int64_t cols,
                                                std::uintptr_t stream) {
  return std::make_unique<CudaMatrix<float>>(a_dev, rows, cols, stream);
}
std::unique_ptr<MatrixBackend> make_cuda_matrix(const double* a_dev, int64_t rows, int64_t cols,
                                                std::uintptr_t stream) {
  return std::make_unique<CudaMatrix<double>>(a_dev, rows, cols, stream);
}

}  // namespace cnnvis
