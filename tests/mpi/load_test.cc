// Load: every rank enqueues many distinct tensor names per step for many steps through the
// public API. Every handle must complete exactly once (its callback runs once, wait() is OK)
// with the exact expected value, and the resident set must stop growing once the job is warm:
// RSS after the last step may exceed RSS after step 2 by at most a stated bound.
//
// Size: --names N --steps S --fresh (or QUORUM_LOAD_NAMES, QUORUM_LOAD_STEPS,
// QUORUM_LOAD_FRESH=1; QUORUM_LOAD_RSS_GROWTH_MB sets the bound). The default is sized for a
// 2-core machine running 4 ranks; the full size is QUORUM_LOAD_NAMES=10000
// QUORUM_LOAD_STEPS=20. By default a step reuses the same N names, as a training step does;
// --fresh gives every step N names never seen before, which only stays bounded if the runtime
// forgets (evicts) names.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "quorum/quorum.h"
#include "tests/common/test_data.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// ASan's quarantine and TSan's shadow memory grow with every allocation made, freed or not:
// the RSS bound means nothing there (the figures are still printed).
constexpr bool kCheckRss = false;
#else
constexpr bool kCheckRss = true;
#endif

namespace {

using quorum::DataType;
using quorum::ReduceOp;

constexpr DataType kDtypes[] = {DataType::kF32, DataType::kF64, DataType::kI32, DataType::kBF16,
                                DataType::kI64};
constexpr ReduceOp kOps[] = {ReduceOp::kSum, ReduceOp::kAverage, ReduceOp::kMin, ReduceOp::kMax};

struct Options {
  int names = 2000;
  int steps = 12;
  bool fresh = false;
  double rss_growth_mb = 16;
};

long env_or(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atol(v) : fallback;
}

Options parse(int argc, char** argv) {
  Options o;
  o.names = static_cast<int>(env_or("QUORUM_LOAD_NAMES", o.names));
  o.steps = static_cast<int>(env_or("QUORUM_LOAD_STEPS", o.steps));
  o.fresh = env_or("QUORUM_LOAD_FRESH", 0) != 0;
  o.rss_growth_mb = static_cast<double>(env_or("QUORUM_LOAD_RSS_GROWTH_MB", 16));
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--names" && i + 1 < argc) {
      o.names = std::atoi(argv[++i]);
    } else if (a == "--steps" && i + 1 < argc) {
      o.steps = std::atoi(argv[++i]);
    } else if (a == "--fresh") {
      o.fresh = true;
    }
  }
  if (o.names < 1) o.names = 1;
  if (o.steps < 3) o.steps = 3;  // the bound compares step 2 with a later step
  return o;
}

double rss_mb() {
  long pages_total = 0, pages_resident = 0;
  std::ifstream statm("/proc/self/statm");
  statm >> pages_total >> pages_resident;
  return static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) /
         (1024.0 * 1024.0);
}

// Tensor i has 1..7 elements, a dtype and an op chosen by i; the values change every step.
struct Slot {
  DataType dtype;
  ReduceOp op;
  size_t count;
  std::vector<unsigned char> buf;  // input and output (in place)
};

}  // namespace

int main(int argc, char** argv) {
  Options opt = parse(argc, argv);
  quorum::Status s = quorum::init();
  if (!s.is_ok()) {
    std::fprintf(stderr, "load: init failed: %s\n", s.message().c_str());
    return 1;
  }
  const int rank = quorum::rank();
  const int size = quorum::size();
  const auto n = static_cast<size_t>(opt.names);

  std::vector<Slot> slots(n);
  for (size_t i = 0; i < n; ++i) {
    slots[i].dtype = kDtypes[i % std::size(kDtypes)];
    slots[i].op = kOps[(i / std::size(kDtypes)) % std::size(kOps)];
    slots[i].count = 1 + i % 7;
    slots[i].buf.resize(slots[i].count * quorum::dtype_size(slots[i].dtype));
  }
  // calls[i]: how many callbacks tensor i has had over the whole run (exactly one per step).
  std::vector<std::atomic<int>> calls(n);
  for (auto& c : calls) c.store(0);
  std::vector<quorum::Handle> handles(n);
  std::vector<std::string> names(n);

  const double rss_start = rss_mb();
  double rss_step2 = 0;
  long bad_values = 0, bad_status = 0, bad_calls = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int step = 0; step < opt.steps; ++step) {
    for (size_t i = 0; i < n; ++i) {
      Slot& sl = slots[i];
      const uint64_t seed = static_cast<uint64_t>(step) * 1000003u + i;
      auto input = quorum::testing::make_input(seed, rank, sl.count, sl.dtype);
      std::memcpy(sl.buf.data(), input.data(), sl.buf.size());
      names[i] = opt.fresh ? "s" : "load/";  // appended, not operator+: GCC 12 -Wrestrict
      if (opt.fresh) names[i].append(std::to_string(step)).append("/");
      names[i].append("layer").append(std::to_string(i)).append(".grad");
      quorum::Tensor t{
          sl.buf.data(), sl.dtype, {static_cast<int64_t>(sl.count)}, quorum::Device::host()};
      handles[i] = quorum::enqueue_allreduce(names[i], t, t, sl.op,
                                             [&calls, i](const quorum::Status&) { ++calls[i]; });
    }
    for (size_t i = 0; i < n; ++i) {
      Slot& sl = slots[i];
      quorum::Status st = quorum::wait(handles[i]);
      if (!st.is_ok()) {
        if (++bad_status <= 5) {
          std::fprintf(stderr, "load: rank %d step %d %s: %s\n", rank, step, names[i].c_str(),
                       st.message().c_str());
        }
        continue;
      }
      const uint64_t seed = static_cast<uint64_t>(step) * 1000003u + i;
      auto want = quorum::testing::expected_allreduce(seed, size, sl.count, sl.dtype, sl.op);
      if (std::memcmp(want.data(), sl.buf.data(), sl.buf.size()) != 0 && ++bad_values <= 5) {
        std::fprintf(stderr, "load: rank %d step %d %s: wrong result\n", rank, step,
                     names[i].c_str());
      }
    }
    // Every callback of this step ran before its wait() returned; none ran twice.
    for (size_t i = 0; i < n; ++i) {
      if (calls[i].load() != step + 1 && ++bad_calls <= 5) {
        std::fprintf(stderr, "load: rank %d step %d %s: callback ran %d times in %d steps\n", rank,
                     step, names[i].c_str(), calls[i].load(), step + 1);
      }
    }
    quorum::mark_step();
    if (step == 1) rss_step2 = rss_mb();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double rss_end = rss_mb();
  quorum::Stats stats = quorum::stats();
  s = quorum::shutdown();
  for (size_t i = 0; i < n; ++i) {  // nothing fires late, during shutdown
    if (calls[i].load() != opt.steps && ++bad_calls <= 5) {
      std::fprintf(stderr, "load: rank %d %s: callback ran %d times in %d steps\n", rank,
                   names[i].c_str(), calls[i].load(), opt.steps);
    }
  }

  const double growth = rss_end - rss_step2;
  const bool bounded = !kCheckRss || growth <= opt.rss_growth_mb;
  const char* verdict = !kCheckRss ? "not checked under a sanitizer" : bounded ? "ok" : "EXCEEDED";
  std::printf(
      "load: rank %d: %d ranks, %d %s names x %d steps = %ld handles in %.1f s (%.0f/s); "
      "%llu plans; RSS start %.1f MiB, after step 2 %.1f MiB, end %.1f MiB (growth %+.1f MiB, "
      "bound %.0f MiB: %s)\n",
      rank, size, opt.names, opt.fresh ? "fresh" : "reused", opt.steps,
      static_cast<long>(n) * opt.steps, seconds, static_cast<double>(n) * opt.steps / seconds,
      static_cast<unsigned long long>(stats.plans), rss_start, rss_step2, rss_end, growth,
      opt.rss_growth_mb, verdict);
  bool ok = s.is_ok() && bad_values == 0 && bad_status == 0 && bad_calls == 0 && bounded;
  if (!s.is_ok()) std::fprintf(stderr, "load: shutdown failed: %s\n", s.message().c_str());
  if (!ok) {
    std::fprintf(stderr,
                 "load: rank %d FAILED: %ld errors, %ld wrong values, %ld bad callback "
                 "counts, RSS growth %.1f MiB (bound %.0f)\n",
                 rank, bad_status, bad_values, bad_calls, growth, opt.rss_growth_mb);
  }
  return ok ? 0 : 1;
}
