#include "cluster/kmeans.hpp"
#include "common/errors.hpp"
#include "common/simd.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>

#include "cluster/linalg.hpp"

namespace cnnvis {

// ---------------------------------------------------------------------------------------------------
// the algorithm, device independent

namespace {

// Below this many multiply-adds a loop runs on one thread: on shared cores a parallel region's barrier
// costs more than it saves.
constexpr int64_t kParallelWork = int64_t(1) << 22;
constexpr int64_t kSmallWork = int64_t(1) << 17;  // n * d * k * restarts below which restarts run serially

int64_t n_chunks(int64_t n) { return std::max<int64_t>(1, (n + kKMeansChunk - 1) / kKMeansChunk); }

// Index i with cumsum(mind)[i] >= target (numpy's searchsorted, side='left'), via the chunk sums so
// only one chunk of distances is read back.
int64_t sample_by_mindist(KMeansBackend& be, const std::vector<double>& chunk_sums, double target) {
  const int64_t n = be.n();
  double cum = 0.0;
  int64_t c = 0;
  const int64_t nc = static_cast<int64_t>(chunk_sums.size());
  for (; c < nc - 1; ++c) {
    if (cum + chunk_sums[c] >= target && chunk_sums[c] > 0.0) break;
    cum += chunk_sums[c];
  }
  const int64_t begin = c * kKMeansChunk, count = std::min(kKMeansChunk, n - begin);
  std::vector<double> d(count);
  be.read_mindist(begin, count, d.data());
  int64_t last_pos = -1;
  for (int64_t i = 0; i < count; ++i) {
    if (d[i] > 0.0) last_pos = i;
    cum += d[i];
    if (cum >= target && d[i] > 0.0) return begin + i;
  }
  // Rounding left target past the end: the last point with weight (as numpy's clip to size - 1).
  return begin + (last_pos >= 0 ? last_pos : count - 1);
}

// Greedy k-means++ (Arthur & Vassilvitskii 2007; scikit-learn's _kmeans_plusplus).
std::vector<double> kmeans_plusplus(KMeansBackend& be, int k, std::mt19937_64& rng) {
  const int64_t n = be.n();
  const int d = be.d();
  const int trials = 2 + static_cast<int>(std::log(static_cast<double>(k)));
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  std::vector<double> centers(static_cast<size_t>(k) * d), cands(static_cast<size_t>(trials) * d), pot(trials);
  std::vector<double> sums(n_chunks(n));
  const int64_t first = std::min<int64_t>(n - 1, static_cast<int64_t>(uni(rng) * n));
  be.get_point(first, centers.data());
  be.set_mindist(centers.data(), false);
  be.mindist_chunk_sums(sums.data());
  double current = 0.0;
  for (double s : sums) current += s;
  std::vector<int64_t> ids(trials);
  for (int c = 1; c < k; ++c) {
    for (int t = 0; t < trials; ++t) {
      const double target = uni(rng) * current;
      ids[t] = current > 0.0 ? sample_by_mindist(be, sums, target) : 0;
      be.get_point(ids[t], cands.data() + static_cast<size_t>(t) * d);
    }
    be.candidate_potentials(cands.data(), trials, pot.data());
    int best = 0;
    for (int t = 1; t < trials; ++t)
      if (pot[t] < pot[best]) best = t;
    std::copy(cands.begin() + static_cast<size_t>(best) * d, cands.begin() + static_cast<size_t>(best + 1) * d,
              centers.begin() + static_cast<size_t>(c) * d);
    be.set_mindist(centers.data() + static_cast<size_t>(c) * d, true);
    be.mindist_chunk_sums(sums.data());
    current = 0.0;
    for (double s : sums) current += s;
  }
  return centers;
}

// New centers from the sums; an empty cluster takes the point farthest from its center (scikit-learn's
// relocation), which leaves its old cluster.
void update_centers(KMeansBackend& be, int k, std::vector<double>& centers) {
  const int d = be.d();
  const int64_t n = be.n();
  std::vector<double> sums(static_cast<size_t>(k) * d);
  std::vector<int64_t> counts(k);
  be.center_sums(k, sums.data(), counts.data());
  int n_empty = 0;
  for (int c = 0; c < k; ++c) n_empty += counts[c] == 0;
  if (n_empty > 0) {
    std::vector<double> dist(n);
    std::vector<int64_t> labels(n);
    be.read_mindist(0, n, dist.data());
    be.read_labels(labels.data());
    std::vector<int64_t> order(n);
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return dist[a] > dist[b]; });
    std::vector<double> x(d);
    int64_t next = 0;
    for (int c = 0; c < k; ++c) {
      if (counts[c] != 0) continue;
      const int64_t p = order[next++ % n];
      be.get_point(p, x.data());
      const int64_t old = labels[p];
      if (old >= 0 && old < k && counts[old] > 1) {
        for (int j = 0; j < d; ++j) sums[old * d + j] -= x[j];
        counts[old] -= 1;
      }
      for (int j = 0; j < d; ++j) sums[static_cast<size_t>(c) * d + j] = x[j];
      counts[c] = 1;
    }
  }
  for (int c = 0; c < k; ++c)
    for (int j = 0; j < d; ++j) centers[static_cast<size_t>(c) * d + j] = sums[static_cast<size_t>(c) * d + j] / counts[c];
}

struct SingleRun {
  std::vector<double> centers;
  double inertia;
  int n_iter;
};

// Lloyd's iterations as scikit-learn's lloyd: stop when no label changes (the centers just computed are
// the fixed point) or the centers move less than tol_abs in total squared distance; the labels and
// inertia returned are those of the final centers.
SingleRun lloyd(KMeansBackend& be, std::vector<double> centers, int k, int max_iter, double tol_abs) {
  std::vector<double> next(centers.size());
  be.reset_labels();
  int it = 1;
  for (; it <= max_iter; ++it) {
    int64_t changed = 0;
    be.assign(centers.data(), k, &changed);
    next = centers;
    update_centers(be, k, next);
    double shift = 0.0;
    for (size_t i = 0; i < centers.size(); ++i) shift += (next[i] - centers[i]) * (next[i] - centers[i]);
    centers.swap(next);
    if ((it > 1 && changed == 0) || shift <= tol_abs) break;
  }
  int64_t changed = 0;
  const double inertia = be.assign(centers.data(), k, &changed);
  return {std::move(centers), inertia, std::min(it, max_iter)};
}

}  // namespace

namespace {

std::vector<uint64_t> run_seeds(const KMeansOptions& opt) {
  std::vector<uint64_t> seeds(std::max(1, opt.n_init));
  uint64_t state = opt.seed;
  for (auto& s : seeds) s = splitmix64(state);
  return seeds;
}

KMeansOutput single_run(KMeansBackend& be, int k, uint64_t seed, int max_iter, double tol_abs) {
  std::mt19937_64 rng(seed);
  SingleRun r = lloyd(be, kmeans_plusplus(be, k, rng), k, max_iter, tol_abs);
  KMeansOutput out;
  out.inertia = r.inertia;
  out.centers = std::move(r.centers);
  out.n_iter = r.n_iter;
  out.labels.resize(be.n());
  be.read_labels(out.labels.data());
  return out;
}

void check_k(int k, int64_t n) {
  if (k < 1 || k > n) throw InvalidArgument("kmeans: need 1 <= n_clusters <= number of points");
}

// tol relative to the mean per-feature variance (scikit-learn's scale). The variance pass reads every
// value: a NaN or infinity anywhere makes it non-finite (so does a float64 value beyond ~1e154, whose
// squared distances overflow too).
double absolute_tol(double tol, double mean_variance) {
  if (!std::isfinite(mean_variance)) throw NonFiniteError("or values whose squares overflow float64");
  return tol * mean_variance;
}

}  // namespace

KMeansOutput kmeans_run(KMeansBackend& be, const KMeansOptions& opt) {
  check_k(opt.k, be.n());
  const double tol_abs = absolute_tol(opt.tol, be.mean_variance());
  KMeansOutput best;
  bool have = false;
  for (uint64_t seed : run_seeds(opt)) {
    KMeansOutput r = single_run(be, opt.k, seed, opt.max_iter, tol_abs);
    if (!have || r.inertia < best.inertia) best = std::move(r), have = true;
  }
  return best;
}

// ---------------------------------------------------------------------------------------------------
// CPU backend

namespace {

using simd::Vec;

// Dot products of a tile of R points with all centers (x · C^T, C^T stored D × kp), register-tiled
// with GCC vector types and compiled once per CPU path (common/simd.hpp). Used where D is large enough
// for the products to dominate.
template <typename T, int R, int NV, int B>
struct DotsChunk {
  [[gnu::always_inline]] static inline void run(const T* x, int d, const T* ct, int kp, int c0, T* out) {
    using V = typename Vec<T, B>::type;
    constexpr int L = Vec<T, B>::lanes;
    V acc[R][NV];
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] = V{};
    for (int j = 0; j < d; ++j) {
      V c[NV];
      for (int v = 0; v < NV; ++v) c[v] = simd::load<V>(ct + static_cast<int64_t>(j) * kp + c0 + v * L);
      for (int r = 0; r < R; ++r) {
        const T xv = x[static_cast<int64_t>(r) * d + j];
        for (int v = 0; v < NV; ++v) acc[r][v] += xv * c[v];
      }
    }
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < NV; ++v) simd::store(out + r * kp + c0 + v * L, acc[r][v]);
  }
};

template <typename T>
auto pick_dots(int rows) { return simd::pick_row_tile<DotsChunk, T, int, T>(rows); }

// Points with at least this many features are assigned through the dot-product kernel.
constexpr int kDotMinFeatures = 8;


template <typename T>
class CpuKMeans final : public KMeansBackend {
 public:
  CpuKMeans(const T* x, int64_t n, int d) : x_(x), n_(n), d_(d), mind_(n), labels_(n, -1) {}
  int64_t n() const override { return n_; }
  int d() const override { return d_; }

  double mean_variance() override {
    std::vector<double> mean(d_, 0.0), var(d_, 0.0);
    chunked_columns([&](int64_t i, double* acc) {
      for (int j = 0; j < d_; ++j) acc[j] += x_[i * d_ + j];
    }, mean.data());
    for (int j = 0; j < d_; ++j) mean[j] /= n_;
    chunked_columns([&](int64_t i, double* acc) {
      for (int j = 0; j < d_; ++j) {
        const double t = x_[i * d_ + j] - mean[j];
        acc[j] += t * t;
      }
    }, var.data());
    double s = 0.0;
    for (int j = 0; j < d_; ++j) s += var[j] / n_;
    return s / d_;
  }

  void get_point(int64_t i, double* row) override {
    for (int j = 0; j < d_; ++j) row[j] = x_[i * d_ + j];
  }

  void set_mindist(const double* c, bool keep_min) override {
#pragma omp parallel for schedule(static) if (n_ * d_ > kParallelWork)
    for (int64_t i = 0; i < n_; ++i) {
      const double dd = dist2(i, c);
      mind_[i] = keep_min ? std::min(mind_[i], dd) : dd;
    }
  }

  void mindist_chunk_sums(double* sums) override {
    const int64_t nc = n_chunks(n_);
#pragma omp parallel for schedule(static) if (n_ * d_ > kParallelWork)
    for (int64_t c = 0; c < nc; ++c) {
      double s = 0.0;
      const int64_t end = std::min(n_, (c + 1) * kKMeansChunk);
      for (int64_t i = c * kKMeansChunk; i < end; ++i) s += mind_[i];
      sums[c] = s;
    }
  }

  void read_mindist(int64_t begin, int64_t count, double* out) override {
    std::copy(mind_.begin() + begin, mind_.begin() + begin + count, out);
  }

  void candidate_potentials(const double* cands, int t, double* pot) override {
    const int64_t nc = n_chunks(n_);
    std::vector<double> part(static_cast<size_t>(nc) * t, 0.0);
    // Many features: |x|² − 2 x·c + |c|² through the dot-product kernel (as scikit-learn's
    // euclidean_distances); the candidates' potentials only rank them.
    const bool blocked = d_ >= kDotMinFeatures;
    const int tp = simd::padded_width(t, sizeof(T));
    std::vector<T> ctt(blocked ? static_cast<size_t>(d_) * tp : 0, T(0));
    std::vector<double> cc(t, 0.0);
    if (blocked) {
      norms();
      for (int q = 0; q < t; ++q)
        for (int j = 0; j < d_; ++j) {
          const double v = cands[static_cast<size_t>(q) * d_ + j];
          ctt[static_cast<size_t>(j) * tp + q] = static_cast<T>(v);
          cc[q] += v * v;
        }
    }
#pragma omp parallel for schedule(static) if (n_ * d_ * t > kParallelWork)
    for (int64_t c = 0; c < nc; ++c) {
      const int64_t end = std::min(n_, (c + 1) * kKMeansChunk);
      std::vector<T> dots(blocked ? 4 * static_cast<size_t>(tp) : 0);
      for (int64_t i = c * kKMeansChunk; i < end; ++i) {
        if (blocked) {
          const int64_t r = (i - c * kKMeansChunk) % 4;
          if (r == 0)
            pick_dots<T>(static_cast<int>(std::min<int64_t>(4, end - i)))(x_ + i * d_, d_, ctt.data(), tp, dots.data());
          for (int q = 0; q < t; ++q) {
            const double dd = std::max(0.0, xx_[i] - 2.0 * static_cast<double>(dots[r * tp + q]) + cc[q]);
            part[c * t + q] += std::min(mind_[i], dd);
          }
        } else {
          for (int q = 0; q < t; ++q) part[c * t + q] += std::min(mind_[i], dist2(i, cands + static_cast<size_t>(q) * d_));
        }
      }
    }
    for (int q = 0; q < t; ++q) {
      double s = 0.0;
      for (int64_t c = 0; c < nc; ++c) s += part[c * t + q];
      pot[q] = s;
    }
  }

  double assign(const double* centers, int k, int64_t* changed) override {
    // Centers transposed (D × kp, padded with far-away dummies) so the distances to all centers are one
    // vectorised loop per coordinate. Per-chunk cluster sums are gathered on the way, when they fit, so
    // center_sums needs no second pass.
    const int kp = (k + 3) / 4 * 4;
    std::vector<double> ct(static_cast<size_t>(d_) * kp, 1e150);
    for (int q = 0; q < k; ++q)
      for (int j = 0; j < d_; ++j) ct[static_cast<size_t>(j) * kp + q] = centers[static_cast<size_t>(q) * d_ + j];
    const int64_t nc = n_chunks(n_);
    fused_sums_ = nc * k * d_ <= (int64_t(1) << 22);
    if (fused_sums_) {
      chunk_sums_.assign(static_cast<size_t>(nc) * k * d_, 0.0);
      chunk_counts_.assign(static_cast<size_t>(nc) * k, 0);
    }
    std::vector<double> part(nc, 0.0);
    std::vector<int64_t> moved(nc, 0);
    // Many features: argmin of |c|² − 2 x·c with the blocked dot-product kernel (in T, as scikit-learn),
    // then the exact distance to the chosen center in double for mind and the inertia.
    const bool blocked = d_ >= kDotMinFeatures;
    const int kpt = simd::padded_width(k, sizeof(T));
    std::vector<T> ctt(blocked ? static_cast<size_t>(d_) * kpt : 0, T(0));
    std::vector<double> cc(k, 0.0);
    if (blocked)
      for (int q = 0; q < k; ++q)
        for (int j = 0; j < d_; ++j) {
          const double v = centers[static_cast<size_t>(q) * d_ + j];
          ctt[static_cast<size_t>(j) * kpt + q] = static_cast<T>(v);
          cc[q] += v * v;
        }
#pragma omp parallel for schedule(dynamic, 1) if (n_ * k * d_ > kParallelWork)
    for (int64_t c = 0; c < nc; ++c) {
      const int64_t end = std::min(n_, (c + 1) * kKMeansChunk);
      std::vector<double> dist(kp);
      std::vector<T> dots(blocked ? 4 * static_cast<size_t>(kpt) : 0);
      double s = 0.0;
      int64_t mv = 0;
      for (int64_t i = c * kKMeansChunk; i < end; ++i) {
        const T* row = x_ + i * d_;
        int64_t arg = 0;
        double best = 0.0;
        if (blocked) {
          const int64_t r = (i - c * kKMeansChunk) % 4;
          if (r == 0) pick_dots<T>(static_cast<int>(std::min<int64_t>(4, end - i)))(row, d_, ctt.data(), kpt, dots.data());
          const T* dr = dots.data() + r * kpt;
          double lo = std::numeric_limits<double>::infinity();
          for (int q = 0; q < k; ++q) {
            const double v = cc[q] - 2.0 * static_cast<double>(dr[q]);
            if (v < lo) lo = v, arg = q;
          }
          best = dist2(i, centers + static_cast<size_t>(arg) * d_);
        } else {
          std::fill(dist.begin(), dist.end(), 0.0);
          double* dd = dist.data();
          for (int j = 0; j < d_; ++j) {
            const double xj = row[j];
            const double* cj = ct.data() + static_cast<size_t>(j) * kp;
#pragma omp simd
            for (int q = 0; q < kp; ++q) {
              const double t = xj - cj[q];
              dd[q] += t * t;
            }
          }
          for (int q = 1; q < k; ++q)
            if (dd[q] < dd[arg]) arg = q;
          best = dd[arg];
        }
        mv += labels_[i] != arg;
        labels_[i] = arg;
        mind_[i] = best;
        s += best;
        if (fused_sums_) {
          double* cs = chunk_sums_.data() + (c * k + arg) * d_;
          for (int j = 0; j < d_; ++j) cs[j] += row[j];
          chunk_counts_[c * k + arg] += 1;
        }
      }
      part[c] = s;
      moved[c] = mv;
    }
    double total = 0.0;
    int64_t mv = 0;
    for (int64_t c = 0; c < nc; ++c) total += part[c], mv += moved[c];
    *changed = mv;
    return total;
  }

  void reset_labels() override { std::fill(labels_.begin(), labels_.end(), -1); }

  void center_sums(int k, double* sums, int64_t* counts) override {
    if (fused_sums_ && static_cast<int64_t>(chunk_counts_.size()) == n_chunks(n_) * k) {
      std::fill(sums, sums + static_cast<size_t>(k) * d_, 0.0);
      std::fill(counts, counts + k, 0);
      for (int64_t c = 0; c < n_chunks(n_); ++c)
        for (int q = 0; q < k; ++q) {
          counts[q] += chunk_counts_[c * k + q];
          for (int j = 0; j < d_; ++j) sums[static_cast<size_t>(q) * d_ + j] += chunk_sums_[(c * k + q) * d_ + j];
        }
      return;
    }
    // Counting sort by label, then each cluster summed in point order: deterministic and parallel.
    std::vector<int64_t> start(k + 1, 0), order(n_);
    for (int64_t i = 0; i < n_; ++i) ++start[labels_[i] + 1];
    for (int q = 0; q < k; ++q) start[q + 1] += start[q];
    std::vector<int64_t> pos(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < n_; ++i) order[pos[labels_[i]]++] = i;
#pragma omp parallel for schedule(dynamic, 1) if (n_ * d_ > kParallelWork)
    for (int q = 0; q < k; ++q) {
      double* s = sums + static_cast<size_t>(q) * d_;
      std::fill(s, s + d_, 0.0);
      for (int64_t p = start[q]; p < start[q + 1]; ++p) {
        const T* row = x_ + order[p] * d_;
        for (int j = 0; j < d_; ++j) s[j] += row[j];
      }
      counts[q] = start[q + 1] - start[q];
    }
  }

  void read_labels(int64_t* out) override { std::copy(labels_.begin(), labels_.end(), out); }

 private:
  void norms() {  // |x_i|² in double, once
    if (!xx_.empty()) return;
    xx_.resize(n_);
#pragma omp parallel for schedule(static) if (n_ * d_ > kParallelWork)
    for (int64_t i = 0; i < n_; ++i) {
      double s = 0.0;
      for (int j = 0; j < d_; ++j) s += static_cast<double>(x_[i * d_ + j]) * x_[i * d_ + j];
      xx_[i] = s;
    }
  }

  double dist2(int64_t i, const double* c) const { return squared_distance(x_ + i * d_, c, d_); }

  template <typename F>
  void chunked_columns(F&& add_row, double* out) {
    const int64_t nc = n_chunks(n_);
    std::vector<double> part(static_cast<size_t>(nc) * d_, 0.0);
#pragma omp parallel for schedule(static) if (n_ * d_ > kParallelWork)
    for (int64_t c = 0; c < nc; ++c) {
      const int64_t end = std::min(n_, (c + 1) * kKMeansChunk);
      for (int64_t i = c * kKMeansChunk; i < end; ++i) add_row(i, part.data() + c * d_);
    }
    for (int64_t c = 0; c < nc; ++c)
      for (int j = 0; j < d_; ++j) out[j] += part[c * d_ + j];
  }

  const T* x_;
  int64_t n_;
  int d_;
  std::vector<double> mind_;
  std::vector<int64_t> labels_;
  std::vector<double> xx_;
  bool fused_sums_ = false;
  std::vector<double> chunk_sums_;
  std::vector<int64_t> chunk_counts_;
};

}  // namespace

template <typename T>
KMeansOutput kmeans_cpu_impl(const T* x, int64_t n, int d, const KMeansOptions& opt) {
  check_k(opt.k, n);
  const double tol_abs = absolute_tol(opt.tol, CpuKMeans<T>(x, n, d).mean_variance());
  const std::vector<uint64_t> seeds = run_seeds(opt);
  const int runs = static_cast<int>(seeds.size());
  std::vector<KMeansOutput> outs(runs);
  // Restarts run side by side, each on one thread: coarse-grained work keeps shared cores busy without
  // barrier waits; a single run parallelises its own loops instead.
  // Tiny problems (a layer's few hundred neurons) stay on one thread: waking a team costs more than the
  // work, and the aggregation calls k-means hundreds of times.
  const bool across_runs = runs > 1 && omp_get_max_threads() > 1 && !omp_in_parallel() &&
                           n * d * static_cast<int64_t>(opt.k) * runs > kSmallWork;
#pragma omp parallel for schedule(dynamic, 1) if (across_runs)
  for (int r = 0; r < runs; ++r) {
    CpuKMeans<T> be(x, n, d);
    outs[r] = single_run(be, opt.k, seeds[r], opt.max_iter, tol_abs);
  }
  int best = 0;
  for (int r = 1; r < runs; ++r)
    if (outs[r].inertia < outs[best].inertia) best = r;
  return std::move(outs[best]);
}

KMeansOutput kmeans_cpu(const float* x, int64_t n, int d, const KMeansOptions& opt) {
  return kmeans_cpu_impl(x, n, d, opt);
}
KMeansOutput kmeans_cpu(const double* x, int64_t n, int d, const KMeansOptions& opt) {
  return kmeans_cpu_impl(x, n, d, opt);
}

std::unique_ptr<KMeansBackend> make_cpu_kmeans(const float* x, int64_t n, int d) {
  return std::make_unique<CpuKMeans<float>>(x, n, d);
}
std::unique_ptr<KMeansBackend> make_cpu_kmeans(const double* x, int64_t n, int d) {
  return std::make_unique<CpuKMeans<double>>(x, n, d);
}

}  // namespace cnnvis
