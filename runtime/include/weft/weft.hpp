// The whole weft runtime API in one include.
//
// Thread safety: stated in each header included here.
//
// Cancellation: stated in each header included here.
#pragma once

#include <weft/cancel/awaiting_token.hpp>
#include <weft/cancel/cancel_scope.hpp>
#include <weft/cancel/cancel_token.hpp>
#include <weft/cancel/operation_cancelled.hpp>
#include <weft/cancel/or_cancelled.hpp>
#include <weft/cancel/shielded.hpp>
#include <weft/cancel/with_cancellation.hpp>
#include <weft/combinators/aggregate_error.hpp>
#include <weft/combinators/child_set.hpp>
#include <weft/combinators/map_concurrent.hpp>
#include <weft/combinators/quorum.hpp>
#include <weft/combinators/task_group.hpp>
#include <weft/combinators/when_all.hpp>
#include <weft/combinators/when_any.hpp>
#include <weft/introspection/metrics.hpp>
#include <weft/introspection/prometheus_format.hpp>
#include <weft/introspection/stall_report.hpp>
#include <weft/introspection/task_dump.hpp>
#include <weft/io/file.hpp>
#include <weft/io/io_operation.hpp>
#include <weft/io/io_unavailable.hpp>
#include <weft/io/signal.hpp>
#include <weft/join_handle.hpp>
#include <weft/outcome.hpp>
#include <weft/runtime.hpp>
#include <weft/spawn.hpp>
#include <weft/spawn_blocking.hpp>
#include <weft/spawn_options.hpp>
#include <weft/stream/async_generator.hpp>
#include <weft/stream/operators.hpp>
#include <weft/stream/timed_operators.hpp>
#include <weft/sync/barrier.hpp>
#include <weft/sync/broadcast.hpp>
#include <weft/sync/channel.hpp>
#include <weft/sync/event.hpp>
#include <weft/sync/latch.hpp>
#include <weft/sync/mutex.hpp>
#include <weft/sync/oneshot.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/sync/spin_lock.hpp>
#include <weft/sync/watch.hpp>
#include <weft/task.hpp>
#include <weft/testing/fault_plan.hpp>
#include <weft/this_task.hpp>
#include <weft/time/clock.hpp>
#include <weft/time/sleep.hpp>
#include <weft/time/timed_out.hpp>
#include <weft/time/timeout.hpp>
#include <weft/to_future.hpp>
#include <weft/version.hpp>
#include <weft/yield.hpp>
