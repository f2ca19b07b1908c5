// weft::flow::stage_options and the policies a pipeline's stages take: what a stage does with
// an item it failed on, whether the output keeps the input's order, and the dead letters.
//
// Thread safety: plain values.
//
// Cancellation: nothing here suspends.
#pragma once

#include <any>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

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

/// One stage's settings.
struct stage_options {
  std::string name{};            // for stats and dead letters
  std::size_t concurrency = 1;   // at most this many items in its callable at once (>= 1)
  std::size_t buffer = 16;       // its output queue's bound (0: hand-over, no queue)
  failure_policy on_failure = failure_policy::fail;
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
