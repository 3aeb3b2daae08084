// Spectral co-clustering (Dhillon 2001) and spectral biclustering (Kluger et al. 2003) as scikit-learn's
// SpectralCoclustering / SpectralBiclustering define them. The drivers (bicluster.cpp) are written once
// against MatrixBackend, which holds the dense matrix A on a device and does every pass over it; CPU
// (OpenMP, bicluster.cpp) and CUDA (bicluster_cuda.cu) implement it.
//
// Every normalisation is an affine map of A, kept implicit so no normalised copy of A is made:
//   M_ij = dr_i · (W_ij + p_i + q_j) · dc_j
// with W = A (scale, bistochastic: p_i = shift that makes A non-negative) or W = log(A + shift) (log:
// p, q the double-centring terms).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "cluster/kmeans.hpp"
#include "cluster/linalg.hpp"

namespace cnnvis {

class MatrixBackend : public SvdBackend {
 public:
  // One pass: the minimum of A, whether every entry is finite, and the row and column sums of A (host).
  virtual void first_pass(double* min_value, bool* finite, double* row_sums, double* col_sums) = 0;
  // One Sinkhorn pass over a = A + shift with column factors s (host): each row's factor becomes
  // r_i = target / Σ_j a_ij s_j (0 for an empty row) as soon as its sum is known, then the column sums
  // v_j = Σ_i r_i a_ij and fro2 = Σ_ij (r_i a_ij s_j)² are accumulated in the same read of the row.
  virtual void sinkhorn_pass(double shift, double target, const double* s, double* r, double* v, double* fro2) = 0;
  // The working matrix W becomes log(A + shift); its row and column sums are returned (host).
  virtual void make_log(double shift, double* row_sums, double* col_sums) = 0;
  // The SVD operator's affine terms (host vectors; null means ones for dr/dc, zeros for p/q).
  virtual void set_affine(const double* dr, const double* dc, const double* p, const double* q) = 0;
  // Products with the original A (host arrays): out_r (rows×c) = A x (cols×c), out_c (cols×c) = A^T y.
  virtual void project(const double* x, const double* y, int c, double* out_r, double* out_c) = 0;
};

// The CUDA products keep at most this many thin (subspace) columns (bicluster_cuda.cu compiles widths 16,
// 32 and 64); bound as _core.CUDA_MAX_SUBSPACE, which cnnvis.compute checks n_components against.
constexpr int kCudaMaxSubspace = 64;

std::unique_ptr<MatrixBackend> make_cpu_matrix(const float* a, int64_t rows, int64_t cols);
std::unique_ptr<MatrixBackend> make_cpu_matrix(const double* a, int64_t rows, int64_t cols);
#ifdef CNNVIS_WITH_CUDA
// A device matrix (borrowed) whose producer queued its work on `stream` (common/cuda_utils.cuh's policy).
std::unique_ptr<MatrixBackend> make_cuda_matrix(const float* a_dev, int64_t rows, int64_t cols, std::uintptr_t stream);
std::unique_ptr<MatrixBackend> make_cuda_matrix(const double* a_dev, int64_t rows, int64_t cols,
                                                std::uintptr_t stream);
#endif

// k-means on host data (n × d), returning labels; the caller picks the device and the options other
// than k and seed.
using KMeansFn = std::function<std::vector<int64_t>(const double* x, int64_t n, int d, int k, uint64_t seed)>;
KMeansFn cpu_kmeans_fn(const KMeansOptions& base);
#ifdef CNNVIS_WITH_CUDA
// k-means on the current GPU for host data (uploaded once; kmeans_cuda.cu).
KMeansFn cuda_kmeans_fn(const KMeansOptions& base);
#endif

// The normalisations (host factors), each one or more passes over A.
struct FirstPass {
  double min_value = 0.0;
  std::vector<double> row_sums, col_sums;  // of A itself
};
// Reads A once; throws NonFiniteError when an entry is NaN or infinite.
FirstPass first_pass(MatrixBackend& mb);
// make_nonnegative's shift: max(0, min_value - min(A)).
inline double nonnegative_shift(const FirstPass& fp, double min_value) {
  return fp.min_value < min_value ? min_value - fp.min_value : 0.0;
}
// _scale_normalize: r = 1/sqrt(row sums), c = 1/sqrt(column sums) of A + shift; 0 where a sum is 0
// (scikit-learn would divide by zero there and produce NaN). No pass over A: the sums are fp's.
void scale_factors(const FirstPass& fp, double shift, std::vector<double>& r, std::vector<double>& c);
// _bistochastic_normalize: the scaling diag(r) (A + shift) diag(c) whose rows sum to sqrt(n/m) and columns
// to sqrt(m/n) (the fixed point of scikit-learn's iteration). Computed by alternating Sinkhorn-Knopp
// passes, which reach it in fewer passes than scikit-learn's simultaneous square-root scaling, until a
// pass changes the matrix by less than tol in Frobenius norm (scikit-learn's stopping rule). Returns
// the passes made.
int bistochastic_factors(MatrixBackend& mb, double shift, int max_iter, double tol, std::vector<double>& r,
                         std::vector<double>& c);
// _log_normalize: W := log(A + shift) and the double-centring terms p (rows), q (cols).
void log_terms(MatrixBackend& mb, double shift, std::vector<double>& p, std::vector<double>& q);

enum class BiclusterMethod { kScale = 0, kBistochastic = 1, kLog = 2 };

struct BiclusterLabels {
  std::vector<int64_t> rows, cols;
  int svd_iterations = 0;
};

// The option structs are bound to Python once (cluster/bind_cluster.cpp); their defaults here are the
// only ones: cnnvis.bicluster and cnnvis.compute read them from the bound structs.
struct SpectralOptions {
  uint64_t seed = 0;
  // Randomized SVD: oversampling as scikit-learn (widened to whole vectors), at least min_power_iter and
  // at most max_power_iter power iterations (-1: scikit-learn's rule, 7 or 4), stopping once every wanted
  // Ritz pair of M^T M has a residual below svd_tol·σ1² (an angle error of about svd_tol / gap, plenty
  // for k-means on the embedding; planted data reach it after one iteration).
  int n_oversamples = 10;
  int min_power_iter = 1;
  int max_power_iter = -1;
  double svd_tol = 1e-3;
  // k-means on the embedding (k and seed are set per call): 4 restarts run in parallel where
  // scikit-learn runs 10 one after the other.
  KMeansOptions kmeans;
};

struct CoclusterOptions {
  int n_clusters = 3;
  SpectralOptions spectral;
};

struct BiclusterOptions {
  BiclusterMethod method = BiclusterMethod::kBistochastic;
  int n_row_clusters = 3, n_col_clusters = 3;
  int n_components = 6;  // singular vectors considered (after the trivial one for scale/bistochastic)
  int n_best = 3;        // of those, the best approximated by piecewise-constant vectors
  SpectralOptions spectral;
};

BiclusterLabels spectral_cocluster(MatrixBackend& mb, const CoclusterOptions& opt, const KMeansFn& km);
BiclusterLabels spectral_bicluster(MatrixBackend& mb, const BiclusterOptions& opt, const KMeansFn& km);

}  // namespace cnnvis
