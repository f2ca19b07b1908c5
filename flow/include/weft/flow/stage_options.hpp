// weft::flow::stage_options and the policies a pipeline's stages take: what a stage does with
// an item it failed on, its optional resilience layers, whether the output keeps the input's
// order, and the dead letters.
//
// Thread safety: plain values.
//
// Cancellation: nothing here suspends.
#pragma once

#include <any>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>

#include <weft/resilience/circuit_breaker.hpp>
#include <weft/resilience/retry.hpp>
#include <weft/time/clock.hpp>

namespace weft::flow {

/// What a stage does with an item whose callable threw (operation_cancelled while the pipeline
/// is cancelled is not a failure).
enum class failure_policy {
  fail,         // the pipeline fails: every stage is cancelled and the output rethrows the error
  drop,         // the item is dropped and counted (stage_stats::dropped)
  dead_letter,  // the item goes to the pipeline's dead-letter sink, and is counted
};

/// Whether the output keeps the input's order (a reorder buffer, bounded by the pipeline's
/// window) or yields items as they complete.
enum class ordering { preserved, completion };

/// One stage's settings. The optional resilience layers wrap each item's call, retry outermost,
/// then the breaker, then the timeout per attempt; the failure policy sees what they let
/// through (a breaker's refusal is a resilience::rejected failure like any other):
///
///     .stage({.name = "persist", .concurrency = 2, .on_failure = failure_policy::dead_letter,
///             .retry = weft::resilience::retry_options{.max_attempts = 3},
///             .timeout = std::chrono::seconds{2}}, persist)
///
/// A retry calls the stage's function again with a copy of the item: items that cannot be
/// copied are refused a retry (std::invalid_argument at stage()), as are the layers' own bad
/// settings. The layers belong to the stage, shared by its workers (one breaker per stage).
struct stage_options {
  std::string name{};            // for stats and dead letters
  std::size_t concurrency = 1;   // at most this many items in its callable at once (>= 1)
  std::size_t buffer = 16;       // its output queue's bound (0: hand-over, no queue)
  failure_policy on_failure = failure_policy::fail;
  std::optional<resilience::retry_options> retry{};
  std::optional<resilience::circuit_breaker_options> breaker{};
  std::optional<clock::duration> timeout{};  // per attempt; must be positive
};

/// An item a stage failed on, for the dead-letter sink: the stage, the item's position in the
/// input, the exception and the item itself (as the stage's input type, in a std::any).
struct dead_letter {
  std::string stage{};
  std::uint64_t sequence = 0;
  std::exception_ptr error{};
  std::any item{};
};

}  // namespace weft::flow
