// The whole weft runtime API in one include.
#pragma once

#include <weft/aggregate_error.hpp>
#include <weft/cancel_token.hpp>
#include <weft/clock.hpp>
#include <weft/file.hpp>
#include <weft/io_operation.hpp>
#include <weft/io_unavailable.hpp>
#include <weft/join_handle.hpp>
#include <weft/map_concurrent.hpp>
#include <weft/operation_cancelled.hpp>
#include <weft/outcome.hpp>
#include <weft/quorum.hpp>
#include <weft/runtime.hpp>
#include <weft/sleep.hpp>
#include <weft/spawn.hpp>
#include <weft/spawn_blocking.hpp>
#include <weft/sync/event.hpp>
#include <weft/task.hpp>
#include <weft/task_group.hpp>
#include <weft/this_task.hpp>
#include <weft/timed_out.hpp>
#include <weft/timeout.hpp>
#include <weft/when_all.hpp>
#include <weft/when_any.hpp>
#include <weft/with_cancellation.hpp>
#include <weft/yield.hpp>
