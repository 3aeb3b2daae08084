// Randomized truncated SVD (Halko, Martinsson & Tropp 2011) over an abstract operator, and the tiny dense
// factorizations it needs, written here because no LAPACK is guaranteed at run time. Thin matrices are
// row-major double arrays (len × l) that live where the backend keeps them (host or device memory); the
// l×l factorizations always run on the host.
#pragma once
#include <cstdint>
#include <vector>

namespace cnnvis {

// ---- tiny host factorizations (row-major, double) ----
// Upper Cholesky in place, g = R^T R with the strict lower triangle zeroed. False when a pivot is not
// positive (g is then left partly overwritten).
bool cholesky_upper(double* g, int l);
// Inverse of an upper-triangular l×l matrix, in place.
void invert_upper(double* r, int l);
// Symmetric eigen-decomposition by cyclic Jacobi: a (l×l) is destroyed; w gets the eigenvalues in
// descending order and v (l×l) the matching eigenvectors as columns.
void jacobi_eigh(double* a, int l, double* w, double* v);

// ---- what a randomized SVD needs from a device (faiss-style: one interface, CPU and CUDA classes) ----
class SvdBackend {
 public:
  virtual ~SvdBackend() = default;
  virtual int64_t rows() const = 0;
  virtual int64_t cols() const = 0;
  virtual double* alloc(int64_t count) = 0;  // backend memory, freed by release()
  virtual void release(double* p) = 0;
  virtual void upload(const double* host, int64_t count, double* dst) = 0;
  virtual void download(const double* src, int64_t count, double* host) = 0;
  virtual void copy(const double* src, int64_t count, double* dst) = 0;  // within backend memory
  // One pass over the matrix: y (rows×l) = M x and, when z is not null, z (cols×l) = M^T M x.
  // x is cols×l. Fusing both products reads the big matrix from memory once per power iteration.
  virtual void power_pass(const double* x, int l, double* y, double* z) = 0;
  // g (host, l×l) = y^T y for y (len×l).
  virtual void gram(const double* y, int64_t len, int l, double* g) = 0;
  // out (len×l2) = y (len×l) · s (host, l×l2); out and y never alias.
  virtual void mul_small(const double* y, int64_t len, int l, const double* s, int l2, double* out) = 0;
};

struct SvdOptions {
  int k = 1;               // singular triplets wanted
  int n_oversamples = 10;  // extra subspace columns (sklearn's default)
  int max_iter = 7;        // power iterations at most (sklearn's n_iter)
  int min_iter = 1;        // power iterations at least
  double tol = 1e-3;       // stop when every top-k Ritz pair of M^T M has residual <= tol·σ1²
  uint64_t seed = 0;
};

struct SvdResult {
  std::vector<double> u;  // rows × k, row-major, host
  std::vector<double> s;  // k, descending
  std::vector<double> v;  // cols × k, row-major, host
  int k = 0;
  int n_iter = 0;         // power iterations done
};

// Top-k singular triplets by subspace iteration on M^T M with Rayleigh-Ritz extraction, stopped early
// when the Ritz pairs' residuals are small (scikit-learn always runs max_iter iterations). Directions past
// the numerical rank come back as zero vectors (defined, never NaN). Signs as sklearn's svd_flip: the
// largest-magnitude entry of each u column is positive. Deterministic for a given seed.
SvdResult randomized_svd(SvdBackend& be, const SvdOptions& opt);

// sklearn's rule for n_iter="auto": 7 power iterations when k < 0.1·min(shape), else 4.
int default_power_iterations(int k, int64_t rows, int64_t cols);

// Make the columns of y (len×l) orthonormal in place: CholeskyQR2, with a shifted round where the Gram
// matrix is singular so rank-deficient inputs give small finite columns instead of NaN. tmp: len×l.
void orthonormalize(SvdBackend& be, double* y, double* tmp, int64_t len, int l);

// ---- host thin-matrix kernels (OpenMP), used by the CPU backends ----
void host_gram(const double* y, int64_t len, int l, double* g);
void host_mul_small(const double* y, int64_t len, int l, const double* s, int l2, double* out);

// Deterministic pseudo-random numbers shared by the CPU and CUDA paths (same seed, same numbers).
uint64_t splitmix64(uint64_t& state);
// The random test matrix of the range finder: uniform on [-1, 1). Any continuous distribution spans a
// generic subspace; this one costs one generator step per entry (Box-Muller normals cost ~10x more,
// a visible share of a 16384-wide GPU run).
void fill_test_matrix(double* out, int64_t count, uint64_t seed);

}  // namespace cnnvis
