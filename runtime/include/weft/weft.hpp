// The whole weft runtime API in one include.
#pragma once

#include <weft/cancel_token.hpp>
#include <weft/clock.hpp>
#include <weft/file.hpp>
#include <weft/io_operation.hpp>
#include <weft/io_unavailable.hpp>
#include <weft/join_handle.hpp>
#include <weft/operation_cancelled.hpp>
#include <weft/runtime.hpp>
#include <weft/sleep.hpp>
#include <weft/spawn.hpp>
#include <weft/spawn_blocking.hpp>
#include <weft/sync/event.hpp>
#include <weft/task.hpp>
#include <weft/this_task.hpp>
#include <weft/with_cancellation.hpp>
#include <weft/yield.hpp>
