#include "tools/bench/converge.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "quorum/quorum.h"
#include "tools/mlp.h"
#include "tools/mlp_tensors.h"

namespace quorum::bench {
namespace {

using demo::Gaussian;
using demo::Layer;
using demo::Mlp;
using demo::parameters;
using demo::view;
using Clock = std::chrono::steady_clock;

bool ok(const Status& s, const char* what) {
  if (s.is_ok()) return true;
  std::fprintf(stderr, "converge: rank %d: %s failed: %s\n", rank(), what, s.message().c_str());
  return false;
}

std::string env(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

double uniform(Gaussian& g) { return 0.5 * (1 + std::erf(g.next() / std::sqrt(2.0))); }

// How much longer than usual this rank's compute takes at this step (1: not at all). The dice
// are the same on every rank, so every rank agrees who straggles when.
double slowdown(const ConvergeArgs& a, Gaussian& dice, int r, int p) {
  const double u = uniform(dice), who = uniform(dice), how = uniform(dice);
  if (a.straggler == "persistent") return r == p - 1 ? 2.0 : 1.0;
  if (a.straggler == "transient" && u < a.transient_p &&
      std::min(static_cast<int>(who * p), p - 1) == r) {
    return 1.5 + 1.5 * how;  // 1.5x .. 3x
  }
  return 1.0;
}

// A rank behind on bounded rounds takes, for every gradient, the result of the oldest round
// that ran without it (quorum::enqueue_catch_up), into a buffer of its own. A tensor with no such
// round (rounds_behind() counts the most of any tensor) is refused at once: the step is then
// computed for the refused ones only, so every tensor still takes part in one round per step.
struct CatchUp {
  std::map<std::string, std::vector<float>> taken;  // by gradient name: the round's result
  int refused = 0, failed = 0;

  void run(Mlp& model) {
    std::vector<std::pair<std::string, Handle>> handles;
    for (auto l = model.layers().rbegin(); l != model.layers().rend(); ++l) {  // backward's order
      for (auto [suffix, grad] : {std::pair{".weight.grad", &l->weight_grad},
                                  std::pair{".bias.grad", &l->bias_grad}}) {
        std::vector<float>& out = taken[l->name + suffix];
        out.resize(grad->size());
        handles.emplace_back(l->name + suffix, enqueue_catch_up(l->name + suffix, view(out)));
      }
    }
    for (auto& [name, h] : handles) {
      Status s = wait(h);
      if (s.is_ok()) continue;
      taken.erase(name);
      ++refused;
      if (s.code() == StatusCode::kFailedPrecondition) continue;
      std::fprintf(stderr, "converge: rank %d: catch-up failed: %s\n", rank(), s.message().c_str());
      ++failed;
    }
  }
  // Copies the rounds taken into the model's gradients.
  void apply(Mlp& model) const {
    for (Layer& l : model.layers()) {
      if (auto w = taken.find(l.name + ".weight.grad"); w != taken.end()) l.weight_grad = w->second;
      if (auto b = taken.find(l.name + ".bias.grad"); b != taken.end()) l.bias_grad = b->second;
    }
  }
  bool took(const std::string& name) const { return taken.count(name) > 0; }
};

// Mean held-out loss of `model`, in chunks (forward keeps activations of the whole input).
float held_out_loss(Mlp& model, const std::vector<float>& x, const std::vector<float>& y,
                    int features) {
  const int n = static_cast<int>(y.size());
  constexpr int kChunk = 256;
  double sum = 0;
  for (int s = 0; s < n; s += kChunk) {
    const int m = std::min(kChunk, n - s);
    sum += static_cast<double>(model.forward(&x[static_cast<size_t>(s) * features], &y[s], m)) * m;
  }
  return static_cast<float>(sum / n);
}

}  // namespace

int run_converge(const ConvergeArgs& a) {
  const int r = rank(), p = size();
  const bool wide = a.model == "wide";
  const int features = wide ? 64 : 16, hidden = wide ? 1536 : 64;
  if (a.batch % p != 0) {
    if (r == 0) std::fprintf(stderr, "converge: --batch %d is not divisible by %d ranks\n", a.batch, p);
    return 1;
  }
  const int local = a.batch / p;
  std::vector<float> x, y;
  demo::make_dataset(a.samples + a.held_out, features, a.seed, &x, &y);
  const std::vector<float> hx(x.begin() + static_cast<ptrdiff_t>(a.samples) * features, x.end());
  const std::vector<float> hy(y.begin() + a.samples, y.end());
  // The same initial weights on every rank (seeded alike), as after a broadcast.
  Mlp model({features, hidden, hidden, 1}, a.seed * 7919 + 3);

  struct Point {
    int step;
    double seconds;
    float loss;
  };
  std::vector<Point> curve;
  Gaussian dice(a.seed ^ 0x5110ull);
  double train_s = 0;
  bool drifted = false;  // a local step since the last averaging
  const Stats before = stats();
  int caught_up = 0;
  for (int step = 0; step < a.steps; ++step) {
    const auto t0 = Clock::now();
    const StepPlan plan = begin_step();
    const double factor = slowdown(a, dice, r, p);  // drawn every step, alike on every rank
    CatchUp caught;
    if (a.catch_up && !plan.local && rounds_behind() > 0) {
      caught.run(model);
      if (caught.failed) return 1;
      if (caught.refused == 0) {  // the whole step taken: nothing to compute
        caught.apply(model);
        model.sgd_step(a.lr);
        ++caught_up;
        mark_step();
        train_s += std::chrono::duration<double>(Clock::now() - t0).count();
        if ((step + 1) % a.eval_every == 0 || step + 1 == a.steps) {
          curve.push_back({step + 1, train_s, held_out_loss(model, hx, hy, features)});
        }
        continue;
      }
    }
    const int start =
        static_cast<int>((static_cast<int64_t>(step) * a.batch) % (a.samples - a.batch + 1)) +
        r * local;
    model.forward(&x[static_cast<size_t>(start) * features], &y[static_cast<size_t>(start)], local);
    const double real_s = std::chrono::duration<double>(Clock::now() - t0).count();
    const double extra = a.compute_ms / 1e3 + (factor - 1) * (real_s + a.compute_ms / 1e3);
    if (extra > 0) std::this_thread::sleep_for(std::chrono::duration<double>(extra));
    std::vector<Handle> handles;
    model.backward([&](Layer& l) {
      if (plan.local) return;
      for (auto [suffix, grad] : {std::pair{".weight.grad", &l.weight_grad},
                                  std::pair{".bias.grad", &l.bias_grad}}) {
        if (caught.took(l.name + suffix)) continue;  // this step's round already taken
        handles.push_back(enqueue_allreduce(l.name + suffix, view(*grad), view(*grad)));
      }
    });
    for (Handle& h : handles) {
      if (!ok(wait(h), "gradient allreduce")) return 1;
    }
    caught.apply(model);
    model.sgd_step(a.lr);
    drifted = drifted || plan.local;
    if (plan.average) {
      if (!ok(average_parameters(parameters(model)), "average_parameters")) return 1;
      drifted = false;
    }
    mark_step();
    train_s += std::chrono::duration<double>(Clock::now() - t0).count();
    if ((step + 1) % a.eval_every == 0 || step + 1 == a.steps) {
      curve.push_back({step + 1, train_s, held_out_loss(model, hx, hy, features)});
    }
  }
  // Bounded rounds' late gradients, folded and applied; replicas that drifted, averaged.
  const auto t_end = Clock::now();
  if (!ok(demo::flush_into(model, a.lr), "flush")) return 1;
  if (drifted && !ok(average_parameters(parameters(model)), "final average_parameters")) return 1;
  train_s += std::chrono::duration<double>(Clock::now() - t_end).count();
  const float final_loss = held_out_loss(model, hx, hy, features);
  const Stats st = stats();

  // Replicas identical? Every rank's fingerprint against rank 0's.
  uint64_t fp = model.fingerprint(), fp0 = fp;
  MPI_Bcast(&fp0, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  int same = fp == fp0 ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  // The job's curve: at each evaluation, the mean of the replicas' held-out losses, reached when
  // the slowest rank got there.
  std::vector<double> mine;
  for (const Point& q : curve) {
    mine.push_back(q.seconds);
    mine.push_back(q.loss);
  }
  std::vector<double> all(mine.size() * static_cast<size_t>(p));
  MPI_Gather(mine.data(), static_cast<int>(mine.size()), MPI_DOUBLE, all.data(),
             static_cast<int>(mine.size()), MPI_DOUBLE, 0, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &caught_up, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  double slowest_train = train_s;
  MPI_Allreduce(MPI_IN_PLACE, &slowest_train, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  if (r == 0) {
    const double params = [&] {
      double n = 0;
      for (Layer& l : model.layers()) n += static_cast<double>(l.weight.size() + l.bias.size());
      return n;
    }();
    std::printf("converge model=%s params=%.0f mode=%s compression=%s%s straggler=%s ranks=%d "
                "seed=%llu steps=%d batch=%d compute_ms=%.1f catch_up=%s\n",
                a.model.c_str(), params, env("QUORUM_SYNC_MODE", "sync").c_str(),
                env("QUORUM_COMPRESSION", "none").c_str(),
                env("QUORUM_COMPRESSION_FEEDBACK", "0") == "1" ? "+feedback" : "",
                a.straggler.c_str(), p, static_cast<unsigned long long>(a.seed), a.steps, a.batch,
                a.compute_ms, a.catch_up ? "yes" : "no");
    std::printf("result train_s=%.3f final_heldout=%.5f bytes=%llu local_steps=%llu "
                "averagings=%llu bounded_plans=%llu caught_up=%d identical=%s\n",
                slowest_train, final_loss,
                static_cast<unsigned long long>(st.bytes - before.bytes),
                static_cast<unsigned long long>(st.local_steps - before.local_steps),
                static_cast<unsigned long long>(st.averagings - before.averagings),
                static_cast<unsigned long long>(st.bounded_plans - before.bounded_plans),
                caught_up, same ? "yes" : "NO");
    if (a.curve) {
      const size_t per_rank = mine.size();
      for (size_t k = 0; k < curve.size(); ++k) {
        double t = 0, loss = 0;
        for (int q = 0; q < p; ++q) {
          t = std::max(t, all[static_cast<size_t>(q) * per_rank + 2 * k]);
          loss += all[static_cast<size_t>(q) * per_rank + 2 * k + 1] / p;
        }
        std::printf("curve %d %.4f %.5f\n", curve[k].step, t, loss);
      }
    }
    std::fflush(stdout);
  }
  return same ? 0 : 1;
}

}  // namespace quorum::bench
