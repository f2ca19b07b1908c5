// The open-loop load generator: ticks at a fixed rate, one task per request, latencies from the
// instant each request was due.
#include "load.hpp"

#include <algorithm>
#include <stdexcept>

#include <weft/cancel/operation_cancelled.hpp>
#include <weft/combinators/task_group.hpp>
#include <weft/time/sleep.hpp>
#include <weft/time/timed_out.hpp>
#include <weft/time/timeout.hpp>

namespace weft::gateway {

open_loop_load::open_loop_load(load_options options, send_fn send)
    : options_(options), send_(std::move(send)), rng_(options.seed * 0x9E3779B97F4A7C15ULL + 7) {
  if (!(options_.rate > 0) || options_.rate > 1e6) {
    throw std::invalid_argument("weft-gateway load: the rate must be in (0, 1000000] per second");
  }
  if (options_.ids == 0) throw std::invalid_argument("weft-gateway load: ids must be at least 1");
  if (!send_) throw std::invalid_argument("weft-gateway load: no send function");
  phases_.push_back(std::make_unique<load_interval>());
}

void open_loop_load::set_phase(std::size_t index) {
  std::lock_guard guard{lock_};
  while (phases_.size() <= index) phases_.push_back(std::make_unique<load_interval>());
  phase_ = index;
}

task<void> open_loop_load::run(clock::time_point until) {
  const auto start = clock::now();
  const double interval_ns = 1e9 / options_.rate;
  task_group requests;
  for (std::uint64_t i = 0;; ++i) {
    const auto due =
        start + clock::duration{static_cast<clock::rep>(static_cast<double>(i) * interval_ns)};
    if (due >= until) break;
    if (clock::now() < due) co_await weft::sleep_until(due);
    // splitmix64 for the product id: cheap, and the same sequence for the same seed.
    std::uint64_t z = (rng_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    std::size_t phase = 0;
    {
      std::lock_guard guard{lock_};
      phase = phase_;
      ++phases_[phase]->sent;
      ++total_.sent;
      ++in_flight_;
    }
    requests.spawn(one(std::to_string(1 + z % options_.ids), due, phase));
  }
  co_await requests.join();
}

task<void> open_loop_load::one(std::string id, clock::time_point due, std::size_t phase) {
  answer_kind k = answer_kind::lost;
  try {
    k = co_await weft::timeout(options_.give_up, send_(std::move(id)));
  } catch (const operation_cancelled&) {
    throw;
  } catch (const std::exception&) {
    k = answer_kind::lost;  // timed out, or the connection failed: no answer
  }
  record(k, clock::now() - due, phase);
}

void open_loop_load::record(answer_kind k, clock::duration latency, std::size_t phase) {
  const auto ns = static_cast<std::uint64_t>(std::max<clock::rep>(latency.count(), 0));
  std::lock_guard guard{lock_};
  --in_flight_;
  for (load_interval* in : {&second_, &total_, phases_[phase].get()}) {
    switch (k) {
      case answer_kind::ok:
        ++in->ok;
        break;
      case answer_kind::degraded:
        ++in->degraded;
        in->max_degraded_ns = std::max(in->max_degraded_ns, ns);
        break;
      case answer_kind::failed:
        ++in->failed;
        break;
      case answer_kind::lost:
        ++in->lost;
        break;
    }
    if (k != answer_kind::lost) in->latency.record(ns);
  }
}

load_interval open_loop_load::take_second() {
  std::lock_guard guard{lock_};
  load_interval out = second_;
  second_ = load_interval{};
  return out;
}

load_interval open_loop_load::phase(std::size_t index) const {
  std::lock_guard guard{lock_};
  if (index >= phases_.size()) return {};
  return *phases_[index];
}

load_interval open_loop_load::total() const {
  std::lock_guard guard{lock_};
  return total_;
}

std::uint64_t open_loop_load::in_flight() const {
  std::lock_guard guard{lock_};
  return in_flight_;
}

}  // namespace weft::gateway
