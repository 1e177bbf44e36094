#include "mtl/weighting/gradient_method.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "mtl/core/error.h"
#include "mtl/core/random.h"

namespace mtl {

void GradientWeighting::set_space(GradientSpace space) {
  if (space == GradientSpace::kRepresentation) {
    const std::string why = representation_space_refusal();
    if (!why.empty()) throw Error("space", "representation space is not defined for this method: " + why);
  }
  space_ = space;
}

void GradientWeighting::set_last_weights(const at::Tensor& w) {
  at::Tensor v = w.to(at::kDouble).contiguous();
  last_weights_.assign(v.data_ptr<double>(), v.data_ptr<double>() + v.numel());
}

at::Tensor gram_matrix(const at::Tensor& G) {
  if (G.scalar_type() == at::kDouble) return G.mm(G.t());
  // float64 accumulation without a float64 copy of all of G: column blocks of 64k entries.
  constexpr int64_t kBlock = 1 << 16;
  const int64_t T = G.size(0), N = G.size(1);
  at::Tensor M = at::zeros({T, T}, at::kDouble);
  for (int64_t begin = 0; begin < N; begin += kBlock) {
    at::Tensor g = G.narrow(1, begin, std::min(kBlock, N - begin)).to(at::kDouble);
    M.addmm_(g, g.t());
  }
  return M;
}

std::vector<double> small_matrix(const at::Tensor& M) {
  at::Tensor m = M.to(at::kDouble).contiguous();
  return std::vector<double>(m.data_ptr<double>(), m.data_ptr<double>() + m.numel());
}

namespace {

using Vec = std::vector<double>;

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// M x for a row-major n x n matrix.
Vec mv(const Vec& M, const Vec& x) {
  const size_t n = x.size();
  Vec out(n, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) out[i] += M[i * n + j] * x[j];
  return out;
}

// argmin over gamma in [0, 1] of |gamma a + (1 - gamma) b|^2 given a.a, a.b, b.b.
double line_search(double aa, double ab, double bb) {
  double denom = aa - 2 * ab + bb;
  if (denom <= 1e-300) return 0.5;
  return std::clamp((bb - ab) / denom, 0.0, 1.0);
}

at::Tensor to_tensor(const Vec& v) { return at::tensor(v, at::kDouble); }

}  // namespace

std::vector<double> project_to_simplex(std::vector<double> v) {
  Vec u = v;
  std::sort(u.begin(), u.end(), std::greater<double>());
  double css = 0, theta = 0;
  for (size_t k = 0; k < u.size(); ++k) {
    css += u[k];
    const double t = (css - 1.0) / static_cast<double>(k + 1);
    if (u[k] - t > 0) theta = t;
  }
  for (double& x : v) x = std::max(x - theta, 0.0);
  return v;
}

at::Tensor project_to_simplex(const at::Tensor& v) {
  return to_tensor(project_to_simplex(small_matrix(v))).to(v.scalar_type());
}

at::Tensor min_norm_frank_wolfe(const at::Tensor& Mt, int max_iter, double tol) {
  const size_t T = static_cast<size_t>(Mt.size(0));
  Vec x(T, 0.0);
  if (T == 1) return to_tensor({1.0});
  const Vec M = small_matrix(Mt);
  auto m = [&](size_t i, size_t j) { return M[i * T + j]; };
  // Best pair of vertices.
  double best = INFINITY, bg = 0.5;
  size_t bi = 0, bj = 1;
  for (size_t i = 0; i < T; ++i)
    for (size_t j = i + 1; j < T; ++j) {
      double g = line_search(m(i, i), m(i, j), m(j, j));
      double v = g * g * m(i, i) + 2 * g * (1 - g) * m(i, j) + (1 - g) * (1 - g) * m(j, j);
      if (v < best) best = v, bi = i, bj = j, bg = g;
    }
  x[bi] = bg;
  x[bj] = 1 - bg;
  for (int it = 0; it < max_iter; ++it) {
    const Vec Mx = mv(M, x);
    const size_t t = static_cast<size_t>(std::min_element(Mx.begin(), Mx.end()) - Mx.begin());
    // Minimise |gamma x + (1 - gamma) e_t|^2.
    const double g = line_search(dot(x, Mx), Mx[t], m(t, t));
    double change = 0;
    for (size_t k = 0; k < T; ++k) {
      const double next = g * x[k] + (k == t ? 1 - g : 0.0);
      change += std::abs(next - x[k]);
      x[k] = next;
    }
    if (change < tol) break;
  }
  return to_tensor(x);
}

bool solve_spd(std::vector<double> A, std::vector<double>& b) {
  const size_t n = b.size();
  for (size_t j = 0; j < n; ++j) {  // A = L L^T, L stored in the lower triangle
    double d = A[j * n + j];
    for (size_t k = 0; k < j; ++k) d -= A[j * n + k] * A[j * n + k];
    if (!(d > 0)) return false;
    d = std::sqrt(d);
    A[j * n + j] = d;
    for (size_t i = j + 1; i < n; ++i) {
      double s = A[i * n + j];
      for (size_t k = 0; k < j; ++k) s -= A[i * n + k] * A[j * n + k];
      A[i * n + j] = s / d;
    }
  }
  for (size_t i = 0; i < n; ++i) {  // L y = b
    for (size_t k = 0; k < i; ++k) b[i] -= A[i * n + k] * b[k];
    b[i] /= A[i * n + i];
  }
  for (size_t i = n; i-- > 0;) {  // L^T x = y
    for (size_t k = i + 1; k < n; ++k) b[i] -= A[k * n + i] * b[k];
    b[i] /= A[i * n + i];
  }
  return true;
}

at::Tensor box_qp(const at::Tensor& M, const at::Tensor& lower) {
  const int64_t T = M.size(0);
  std::vector<double> u(lower.data_ptr<double>(), lower.data_ptr<double>() + T);
  std::vector<double> lo = u;
  auto m = M.accessor<double, 2>();
  for (int sweep = 0; sweep < 200000; ++sweep) {
    double change = 0, scale = 0;
    for (int64_t k = 0; k < T; ++k) {
      if (m[k][k] <= 0) continue;
      double r = 0;
      for (int64_t j = 0; j < T; ++j) r += m[k][j] * u[j];
      double nk = std::max(lo[k], u[k] - r / m[k][k]);
      change = std::max(change, std::abs(nk - u[k]));
      scale = std::max(scale, std::abs(nk));
      u[k] = nk;
    }
    if (change <= 1e-13 * std::max(scale, 1e-300)) break;
  }
  return at::tensor(u, M.options());
}

std::vector<double> minimize_on_simplex(const std::function<double(const std::vector<double>&)>& f,
                                        const std::function<std::vector<double>(const std::vector<double>&)>& grad,
                                        std::vector<double> x0, int max_iter, double tol) {
  const size_t n = x0.size();
  Vec x = x0, y = x0, next(n), d(n), y_next(n), trial(n);
  double t = 1.0, step = 1.0;
  double fx = f(x);
  for (int it = 0; it < max_iter; ++it) {
    const Vec gy = grad(y);
    const double fy = f(y);
    double fn;
    while (true) {  // backtracking on the quadratic upper bound
      for (size_t k = 0; k < n; ++k) trial[k] = y[k] - step * gy[k];
      next = project_to_simplex(trial);
      for (size_t k = 0; k < n; ++k) d[k] = next[k] - y[k];
      fn = f(next);
      if (fn <= fy + dot(gy, d) + dot(d, d) / (2 * step) + 1e-15 || step < 1e-20) break;
      step *= 0.5;
    }
    if (fn > fx) {  // restart the momentum (monotone variant)
      next = x;
      fn = fx;
      t = 1.0;
    }
    const double t_next = (1 + std::sqrt(1 + 4 * t * t)) / 2;
    double change = 0;
    for (size_t k = 0; k < n; ++k) {
      y_next[k] = next[k] + ((t - 1) / t_next) * (next[k] - x[k]);
      change = std::max(change, std::abs(next[k] - x[k]));
    }
    x = next;
    fx = fn;
    y = project_to_simplex(y_next);
    t = t_next;
    step *= 2;  // let the step grow again
    if (change < tol && it > 10) break;
  }
  return x;
}

at::Tensor regularised_gram(const at::Tensor& G, double reg_eps) {
  at::Tensor M = gram_matrix(G);
  const int64_t T = M.size(0);
  double scale = M.diagonal().sum().item<double>() / static_cast<double>(T);
  return M + (reg_eps * std::max(scale, 1e-300)) * at::eye(T, M.options());
}

std::vector<int64_t> task_order(int64_t T, int64_t i, int64_t step, uint64_t seed, bool random) {
  std::vector<int64_t> order;
  if (random) {
    at::Generator gen = make_generator(seed, static_cast<uint64_t>(step), static_cast<uint64_t>(i) + 1);
    at::Tensor perm = at::randperm(T, gen, at::TensorOptions().dtype(at::kLong));
    order.assign(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + T);
  } else {
    for (int64_t j = 0; j < T; ++j) order.push_back(j);
  }
  return order;
}

at::Tensor weighted_rows(const at::Tensor& G, const at::Tensor& w) {
  return w.to(G.scalar_type()).unsqueeze(0).mm(G).squeeze(0);
}

at::Tensor least_squares_weights(const at::Tensor& G, const at::Tensor& d) {
  at::Tensor g = G.to(at::kDouble);
  at::Tensor M = g.mm(g.t());
  return at::linalg_pinv(M, /*rcond=*/1e-12, /*hermitian=*/true).mv(g.mv(d.to(at::kDouble)));
}

}  // namespace mtl
