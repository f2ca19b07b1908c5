// weft::async_generator<T>: a coroutine that co_yields values and may co_await between them.
//
// Thread safety: one consumer at a time (a second next() while one is pending throws
// std::logic_error). The generator runs as part of the consumer's task; move or destroy it only
// while no next() is pending.
//
// Cancellation: the generator observes the consumer's token: its awaits throw operation_cancelled,
// which next() rethrows, and unless the generator caught it the stream has ended (later next()
// calls return an empty optional). next() itself does not check the token.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include <weft/detail/await_check.hpp>
#include <weft/detail/cancel_hook.hpp>
#include <weft/detail/frame_pool.hpp>
#include <weft/detail/task_frame.hpp>

namespace weft {

template <class T>
class async_generator;

namespace detail {

/// Who resumes whom between a generator and its consumer.
///
/// next() resumes the generator on the consumer's own stack ("inline"). If the generator yields
/// (or ends) before it suspends on anything else, the value is ready when that resume returns and
/// the consumer goes on without suspending. If the generator first suspends on an inner await,
/// next() suspends the consumer ("waiting"), and the yield that eventually comes, on whatever
/// thread resumed the generator, transfers control to the consumer. One atomic phase decides
/// between the two, and the consumer's resume_gate keeps it from being resumed inside its own
/// await_suspend.
enum class gen_phase : std::uint8_t { idle, inline_run, waiting, produced };

template <class T>
class gen_promise final : public promise_base {
 public:
  async_generator<T> get_return_object() noexcept;
  std::suspend_always initial_suspend() const noexcept { return {}; }

  // Frames come from the runtime's frame pool, as tasks' do.
  static void* operator new(std::size_t n) { return frame_allocate(n); }
  static void operator delete(void* p, std::size_t n) noexcept { frame_deallocate(p, n); }

  struct yield_awaiter {
    gen_promise* p;
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<>) const noexcept {
      return p->hand_back();
    }
    void await_resume() const noexcept {}
  };
  yield_awaiter final_suspend() noexcept {
    finished_ = true;
    return {this};
  }
  template <class U>
  requires std::is_convertible_v<U&&, T> yield_awaiter yield_value(U&& v) {
    value_.emplace(std::forward<U>(v));
    return {this};
  }
  void return_void() const noexcept {}
  void unhandled_exception() noexcept { error_ = std::current_exception(); }

  /// The consumer's side of the protocol (next_awaiter).
  std::atomic<gen_phase> phase{gen_phase::idle};
  std::coroutine_handle<> consumer;
  resume_gate* consumer_gate = nullptr;
  std::optional<T> value_;
  std::exception_ptr error_;
  bool finished_ = false;

 private:
  std::coroutine_handle<> hand_back() noexcept {
    auto expected = gen_phase::inline_run;
    // acq_rel: publishes the value to the consumer, whichever way it learns of it.
    if (phase.compare_exchange_strong(expected, gen_phase::produced, std::memory_order_acq_rel)) {
      return std::noop_coroutine();  // back into next(), which called resume()
    }
    phase.store(gen_phase::produced, std::memory_order_release);  // the consumer waits
    if (consumer_gate->wake()) return consumer;
    return std::noop_coroutine();  // its await_suspend has not returned: it goes on by itself
  }
};

}  // namespace detail

/// A stream: the coroutine `co_yield`s values and may `co_await` anything in between; the
/// consumer pulls with `co_await gen.next()`, which runs the generator up to its next value.
///
///     weft::async_generator<line> lines(socket& s) {
///       while (auto chunk = co_await s.read())  co_yield parse(*chunk);
///     }
///     auto g = lines(sock);
///     while (auto l = co_await g.next()) handle(*l);
///
/// Lazy: nothing runs before the first next(). The generator runs on the consumer's worker and
/// inherits the consumer's cancellation (its awaits throw operation_cancelled when the consumer
/// is cancelled). An exception in the generator is rethrown by next(); after the end (or an
/// exception) next() returns an empty optional. Dropping the generator object destroys the
/// coroutine frame where it stands, running its destructors (RAII cleanup of the socket,
/// subscription, …). Misuse: next() on an empty (moved-from) generator, or a second next() while
/// one is pending, throws std::logic_error.
template <class T>
class [[nodiscard]] async_generator {
 public:
  using promise_type = detail::gen_promise<T>;
  using handle = std::coroutine_handle<promise_type>;

  async_generator() noexcept = default;
  explicit async_generator(handle h) noexcept : h_(h) {}
  async_generator(async_generator&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  async_generator& operator=(async_generator&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  ~async_generator() { reset(); }

  class [[nodiscard("next does nothing until it is co_awaited")]] next_awaiter
      : public detail::await_check {
   public:
    explicit next_awaiter(handle h) noexcept
        : await_check("weft::async_generator::next() was never co_awaited: nothing is read"),
          h_(h) {}
    next_awaiter(next_awaiter&& other) noexcept : await_check(std::move(other)), h_(other.h_) {}
    /// A combinator refuses it (children.hpp): the generator takes the awaiting task's
    /// cancellation, so a child cancelled by a timeout would end the stream. Bound a wait for the
    /// next value with weft::timeout around a task that owns the loop, or with the stream
    /// operators (<weft/stream/timed_operators.hpp>).
    using not_a_combinator_child = void;
    next_awaiter(const next_awaiter&) = delete;
    next_awaiter& operator=(const next_awaiter&) = delete;
    /// A dump follows the generator's frame while it produces the next value.
    void describe_await(await_description& d) const noexcept {
      d.what = "async_generator next";
      if (h_) d.child_frame = h_.address();
    }
    bool await_ready() const {
      mark_awaited();
      if (!h_) throw std::logic_error("weft::async_generator::next: the generator is empty");
      return h_.promise().finished_;
    }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> consumer) {
      auto& p = h_.promise();
      auto expected = detail::gen_phase::idle;
      if (!p.phase.compare_exchange_strong(expected, detail::gen_phase::inline_run,
                                           std::memory_order_acq_rel)) {
        throw std::logic_error("weft::async_generator::next: a next() is already pending");
      }
      p.token_ = detail::token_of(consumer);  // the generator's awaits see our cancellation
      p.consumer = consumer;
      p.consumer_gate = &gate_;
      h_.resume();
      expected = detail::gen_phase::inline_run;
      if (p.phase.compare_exchange_strong(expected, detail::gen_phase::waiting,
                                          std::memory_order_acq_rel)) {
        return gate_.suspend();  // it awaits something; its yield resumes us
      }
      return false;  // it yielded (or ended) while we ran it
    }
    std::optional<T> await_resume() {
      auto& p = h_.promise();
      p.phase.store(detail::gen_phase::idle, std::memory_order_relaxed);
      if (p.error_) std::rethrow_exception(std::exchange(p.error_, nullptr));
      if (!p.value_) return std::nullopt;
      std::optional<T> out{std::move(p.value_)};
      p.value_.reset();
      return out;
    }

   private:
    handle h_;
    detail::resume_gate gate_;
  };

  /// The next value; empty once the generator ended.
  [[nodiscard("next does nothing until it is co_awaited")]] next_awaiter next() noexcept {
    return next_awaiter{h_};
  }
  /// False for an empty (default or moved-from) generator.
  explicit operator bool() const noexcept { return static_cast<bool>(h_); }

 private:
  void reset() noexcept {
    if (h_) std::exchange(h_, {}).destroy();
  }
  handle h_;
};

template <class T>
async_generator<T> detail::gen_promise<T>::get_return_object() noexcept {
  return async_generator<T>{std::coroutine_handle<gen_promise>::from_promise(*this)};
}

}  // namespace weft
