// k-means: k-means++ seeding (greedy, as scikit-learn), Lloyd iterations, best of n_init restarts.
// The algorithm (kmeans.cpp) is written once against KMeansBackend, which holds the points on a device
// and does the O(N) work; CPU (OpenMP) and CUDA backends implement it. Every sum over points runs over
// fixed chunks of kChunk points added in order, so results do not depend on the thread count.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "common/host_device.hpp"

namespace cnnvis {

constexpr int64_t kKMeansChunk = 4096;

// |row - c|² in double, term by term (the CPU and CUDA backends' direct distance).
template <typename T>
CNNVIS_HOST_DEVICE inline double squared_distance(const T* row, const double* c, int d) {
  double s = 0.0;
  for (int j = 0; j < d; ++j) {
    const double t = static_cast<double>(row[j]) - c[j];
    s += t * t;
  }
  return s;
}

class KMeansBackend {
 public:
  virtual ~KMeansBackend() = default;
  virtual int64_t n() const = 0;
  virtual int d() const = 0;
  // Mean over the columns of the per-column variance (scikit-learn's scale for tol).
  virtual double mean_variance() = 0;
  virtual void get_point(int64_t i, double* row) = 0;
  // mind_i = |x_i - c|^2, or min(mind_i, |x_i - c|^2) when keep_min.
  virtual void set_mindist(const double* c, bool keep_min) = 0;
  // Per chunk of kKMeansChunk points, the sum of mind (host, ceil(N/chunk) values).
  virtual void mindist_chunk_sums(double* sums) = 0;
  virtual void read_mindist(int64_t begin, int64_t count, double* out) = 0;
  // pot_c = Σ_i min(mind_i, |x_i - cand_c|^2) for t candidates (t×D host).
  virtual void candidate_potentials(const double* cands, int t, double* pot) = 0;
  // Nearest of the k centers (k×D host) for every point; mind_i becomes that squared distance.
  // Returns the inertia; *changed counts labels that differ from the previous call's.
  virtual double assign(const double* centers, int k, int64_t* changed) = 0;
  virtual void reset_labels() = 0;  // the next assign counts every point as changed
  // Per-cluster sums of the points (k×D) and counts (k), by the current labels.
  virtual void center_sums(int k, double* sums, int64_t* counts) = 0;
  virtual void read_labels(int64_t* out) = 0;
};

// Bound to Python once (cluster/bind_cluster.cpp); these defaults are cnnvis.compute.kmeans's.
struct KMeansOptions {
  int k = 8;
  int n_init = 4;
  int max_iter = 300;
  double tol = 1e-4;  // relative to mean_variance(), as scikit-learn
  uint64_t seed = 0;
};

struct KMeansOutput {
  std::vector<int64_t> labels;  // N
  std::vector<double> centers;  // k × D
  double inertia = 0.0;
  int n_iter = 0;
};

// Each restart seeded from opt.seed; the lowest inertia wins (the first on ties). Throws NonFiniteError
// when X holds NaN or infinity (seen by the variance pass that scales tol).
KMeansOutput kmeans_run(KMeansBackend& be, const KMeansOptions& opt);
// CPU k-means over a row-major (N × D) host array: the same algorithm, restarts run in parallel.
KMeansOutput kmeans_cpu(const float* x, int64_t n, int d, const KMeansOptions& opt);
KMeansOutput kmeans_cpu(const double* x, int64_t n, int d, const KMeansOptions& opt);

// CPU backend over a row-major (N × D) array of float or double (not copied; must outlive the backend).
std::unique_ptr<KMeansBackend> make_cpu_kmeans(const float* x, int64_t n, int d);
std::unique_ptr<KMeansBackend> make_cpu_kmeans(const double* x, int64_t n, int d);

#ifdef CNNVIS_WITH_CUDA
// CUDA backend over a device array (N × D, row-major); the pointer is borrowed. The input's producer
// queued its work on `stream` (common/cuda_utils.cuh's policy).
std::unique_ptr<KMeansBackend> make_cuda_kmeans(const float* x_dev, int64_t n, int d, std::uintptr_t stream);
std::unique_ptr<KMeansBackend> make_cuda_kmeans(const double* x_dev, int64_t n, int d, std::uintptr_t stream);
#endif

}  // namespace cnnvis
