#include "mtl/weighting/gradient_method.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "mtl/core/random.h"

namespace mtl {

void GradientWeighting::set_last_weights(const at::Tensor& w) {
  at::Tensor v = w.to(at::kDouble).contiguous();
  last_weights_.assign(v.data_ptr<double>(), v.data_ptr<double>() + v.numel());
}

at::Tensor gram_matrix(const at::Tensor& G) {
  at::Tensor g = G.to(at::kDouble);
  return g.mm(g.t());
}

at::Tensor project_to_simplex(const at::Tensor& v) {
  at::Tensor u = std::get<0>(v.sort(0, /*descending=*/true));
  at::Tensor css = u.cumsum(0) - 1.0;
  at::Tensor idx = at::arange(1, v.size(0) + 1, v.options());
  at::Tensor cond = (u - css / idx) > 0;
  int64_t rho = cond.nonzero().max().item<int64_t>();
  double theta = css[rho].item<double>() / static_cast<double>(rho + 1);
  return (v - theta).clamp_min(0.0);
}

namespace {
// argmin over gamma in [0, 1] of |gamma a + (1 - gamma) b|^2 given a.a, a.b, b.b.
double line_search(double aa, double ab, double bb) {
  double denom = aa - 2 * ab + bb;
  if (denom <= 1e-300) return 0.5;
  return std::clamp((bb - ab) / denom, 0.0, 1.0);
}
}  // namespace

at::Tensor min_norm_frank_wolfe(const at::Tensor& M, int max_iter, double tol) {
  const int64_t T = M.size(0);
  at::Tensor x = at::zeros({T}, M.options());
  if (T == 1) return x.fill_(1.0);
  auto m = M.accessor<double, 2>();
  // Best pair of vertices.
  double best = INFINITY;
  int64_t bi = 0, bj = 1;
  double bg = 0.5;
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = i + 1; j < T; ++j) {
      double g = line_search(m[i][i], m[i][j], m[j][j]);
      double v = g * g * m[i][i] + 2 * g * (1 - g) * m[i][j] + (1 - g) * (1 - g) * m[j][j];
      if (v < best) best = v, bi = i, bj = j, bg = g;
    }
  x[bi] = bg;
  x[bj] = 1 - bg;
  for (int it = 0; it < max_iter; ++it) {
    at::Tensor Mx = M.mv(x);
    int64_t t = Mx.argmin().item<int64_t>();
    double xMx = x.dot(Mx).item<double>();
    double xMe = Mx[t].item<double>();
    double eMe = m[t][t];
    // Minimise |gamma x + (1 - gamma) e_t|^2.
    double g = line_search(xMx, xMe, eMe);
    at::Tensor next = g * x;
    next[t] += 1 - g;
    double change = (next - x).abs().sum().item<double>();
    x = next;
    if (change < tol) break;
  }
  return x;
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

at::Tensor minimize_on_simplex(const std::function<double(const at::Tensor&)>& f,
                               const std::function<at::Tensor(const at::Tensor&)>& grad, const at::Tensor& x0,
                               int max_iter, double tol) {
  at::Tensor x = x0.clone(), y = x0.clone();
  double t = 1.0, step = 1.0;
  double fx = f(x);
  for (int it = 0; it < max_iter; ++it) {
    at::Tensor gy = grad(y);
    double fy = f(y);
    at::Tensor next;
    double fn;
    while (true) {  // backtracking on the quadratic upper bound
      next = project_to_simplex(y - step * gy);
      at::Tensor d = next - y;
      fn = f(next);
      if (fn <= fy + gy.dot(d).item<double>() + d.dot(d).item<double>() / (2 * step) + 1e-15 || step < 1e-20) break;
      step *= 0.5;
    }
    if (fn > fx) {  // restart the momentum (monotone variant)
      next = x;
      fn = fx;
      t = 1.0;
    }
    double t_next = (1 + std::sqrt(1 + 4 * t * t)) / 2;
    at::Tensor y_next = next + ((t - 1) / t_next) * (next - x);
    double change = (next - x).abs().max().item<double>();
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
  return w.to(at::kDouble).unsqueeze(0).mm(G.to(at::kDouble)).squeeze(0).to(G.scalar_type());
}

at::Tensor least_squares_weights(const at::Tensor& G, const at::Tensor& d) {
  at::Tensor g = G.to(at::kDouble);
  at::Tensor M = g.mm(g.t());
  return at::linalg_pinv(M, /*rcond=*/1e-12, /*hermitian=*/true).mv(g.mv(d.to(at::kDouble)));
}

}  // namespace mtl
