// weft::resilience::retry_gate: what retries and hedges ask before sending another attempt — a
// shared retry budget (Tower) or a gRPC-style token throttle implement it.
//
// Thread safety: one gate is shared by every retry and hedge calling a dependency and is called
// from any worker at once: implementations must be thread-safe (retry_budget and grpc_throttle
// are).
//
// Cancellation: nothing here suspends. An allowance cannot be given back: one granted by
// try_acquire_retry() stays spent when the call is cancelled before that attempt runs (a retry
// cancelled in its backoff sleep). A cancelled attempt is never reported as a failure.
#pragma once

#include <weft/resilience/classify.hpp>

namespace weft::resilience {

/// Shared by every retry and hedge layer that should draw from the same allowance (typically one
/// per downstream dependency). Implementations are thread-safe: layers call them from any worker.
class retry_gate {
 public:
  virtual ~retry_gate() = default;
  /// An original request was issued (recorded when it is issued, before it runs).
  virtual void record_request() noexcept = 0;
  /// May one more attempt (a retry or a hedge) go now? True withdraws the allowance for it.
  virtual bool try_acquire_retry() noexcept = 0;
  /// An attempt finished with this verdict (a token throttle earns tokens on success and loses
  /// them on failure; a ratio budget ignores it).
  virtual void record_outcome(verdict v) noexcept = 0;
};

}  // namespace weft::resilience
