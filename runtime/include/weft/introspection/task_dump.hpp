// weft::task_record and to_string: what runtime::dump_tasks returns, and its readable tree.
//
// Thread safety: value types, copied out of the runtime when the dump was taken; to_string is a
// pure function.
//
// Cancellation: nothing here suspends (runtime::dump_tasks blocks a plain thread; weft::dump_tasks
// in spawn.hpp is the awaitable).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace weft {

/// A place in the source: a spawn call or a co_await expression.
struct code_location {
  std::string file;
  std::string function;  // the enclosing function, as the compiler spells it (cleaned up)
  std::uint32_t line = 0;
};

enum class task_state {
  ready,      // queued on a worker (or the injection queue), waiting for its turn
  running,    // being run by a worker right now
  suspended,  // waiting at a co_await for something to wake it
};

/// One live spawned task, as runtime::dump_tasks saw it.
struct task_record {
  std::uint64_t id = 0;
  std::string name;  // empty if spawned without one
  code_location spawned_at;
  task_state state = task_state::suspended;
  /// ready: the worker whose queue holds it (none: the shared injection queue); running: the
  /// worker running it, when known.
  std::optional<std::size_t> worker;
  /// The co_await sites from the spawned task's body down to the innermost awaited frame.
  std::vector<code_location> await_chain;
  /// What the innermost co_await waits on, in words ("sleep until +1.250 s", "channel recv").
  /// Empty for a task that has not started yet.
  std::string waiting_on;
};

/// Renders one task as a small tree:
///
///     task 7 "conn 10.0.0.7:5511" suspended, spawned at server.cpp:88 in accept_loop()
///       at server.cpp:41 in serve(connection)
///       at http.cpp:120 in read_request(connection&)
///       waiting on: read fd 12
[[nodiscard]] std::string to_string(const task_record& task);
/// All tasks, in id order, with a summary line first.
[[nodiscard]] std::string to_string(const std::vector<task_record>& tasks);
[[nodiscard]] const char* to_string(task_state state) noexcept;

}  // namespace weft
