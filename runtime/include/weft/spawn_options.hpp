// weft::spawn_options: what a spawned task is called in dumps and stall reports.
//
// Thread safety: a value type; the name is copied during the spawn call, so the view need only live
// for it.
//
// Cancellation: nothing here suspends.
#pragma once

#include <string_view>

namespace weft {

/// Options for weft::spawn and runtime::spawn:
///
///     weft::spawn(serve(std::move(conn)), {.name = "conn 10.0.0.7:5511"});
///
/// The name is copied (the view need only live for the call); naming a task costs one small
/// allocation and a table entry until the task is freed, so name tasks that live a while
/// (connections, workers), not every short request. An empty name means none.
struct spawn_options {
  std::string_view name{};
};

}  // namespace weft
