// weft::resilience::resilience_context: what travels with one call through a pipeline — the
// caller's cancellation, the propagated deadline, the operation key, the attempt number, a
// property bag and the epoch tags of the permits the call holds.
//
// Thread safety: a context belongs to one call and is not synchronised: layers write its deadline,
// token, attempt, attempts_made and epoch tags, so never share one between concurrent calls. The
// property bag is shared, not copied, by the copies a hedge makes for its attempts and a
// time_limiter in detach mode for its operation, which run at once on any workers: write properties
// only where no such copy is running.
//
// Cancellation: nothing here suspends. `token` is the cancellation the layers observe besides the
// awaiting task's own: requesting it cancels the call. A time_limiter replaces it for the layers
// inside with one that also fires at its deadline, and puts it back; a hedge gives each attempt's
// copy a token of its own.
#pragma once

#include <any>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <weft/cancel/cancel_token.hpp>
#include <weft/time/clock.hpp>

namespace weft::resilience {

/// One call's context. Layers read and narrow it (a timeout layer sets a sooner deadline for the
/// layers inside it, a retry layer numbers attempts); the operation may take it as its argument.
///
///     auto reply = co_await pipe.execute([&](resilience_context& ctx) -> weft::task<reply> {
///       co_return co_await backend.call(request, ctx.remaining());
///     });
struct resilience_context {
  /// The caller's cancellation (the awaiting task's token).
  cancel_token token;
  /// The absolute deadline on the runtime clock, if any layer or the caller set one.
  std::optional<clock::time_point> deadline;
  /// The operation key (used by keyed families and reported in events and metrics).
  std::string_view key;
  /// The pipeline's name, reported in events and metrics.
  std::string_view pipeline;
  /// 1 for the first attempt; a retry layer counts up, a hedge numbers its attempts.
  int attempt = 1;
  /// How many attempts the last retry or hedge layer that returned made (its final `attempt`, or
  /// the hedge's attempts launched); 0 until one has. A fallback reads it for fallback_args.
  int attempts_made = 0;

  /// Time left until the deadline (zero if it passed), or nullopt without one.
  [[nodiscard]] std::optional<clock::duration> remaining() const {
    if (!deadline) return std::nullopt;
    const auto left = *deadline - clock::now();
    return left.count() > 0 ? left : clock::duration::zero();
  }
  /// Narrows the deadline: the sooner of the current one and `d`.
  void narrow_deadline(clock::time_point d) noexcept {
    if (!deadline || d < *deadline) deadline = d;
  }

  /// Free-form properties (allocated on first use).
  std::any& property(const std::string& name) {
    if (!properties_) properties_ = std::make_shared<std::map<std::string, std::any, std::less<>>>();
    return (*properties_)[name];
  }
  [[nodiscard]] const std::any* find_property(std::string_view name) const {
    if (!properties_) return nullptr;
    const auto it = properties_->find(name);
    return it == properties_->end() ? nullptr : &it->second;
  }

  /// The epoch of the state that issued a permit this call holds, per issuing layer (a breaker
  /// tags its permit; an outcome is recorded against that epoch, never the current one).
  struct epoch_tag {
    const void* layer = nullptr;
    std::uint64_t epoch = 0;
  };
  static constexpr std::size_t max_epoch_tags = 4;
  /// Records `layer`'s epoch (replacing its earlier one). Beyond max_epoch_tags layers the oldest
  /// tag is overwritten.
  void tag_epoch(const void* layer, std::uint64_t epoch) noexcept {
    for (std::uint8_t i = 0; i < epoch_count_; ++i) {
      if (epochs_[i].layer == layer) {
        epochs_[i].epoch = epoch;
        return;
      }
    }
    if (epoch_count_ < max_epoch_tags) {
      epochs_[epoch_count_++] = {layer, epoch};
    } else {
      epochs_[0] = {layer, epoch};
    }
  }
  [[nodiscard]] std::optional<std::uint64_t> epoch_of(const void* layer) const noexcept {
    for (std::uint8_t i = 0; i < epoch_count_; ++i) {
      if (epochs_[i].layer == layer) return epochs_[i].epoch;
    }
    return std::nullopt;
  }

 private:
  // Shared, not copied, when a hedge or retry copies the context for an attempt.
  std::shared_ptr<std::map<std::string, std::any, std::less<>>> properties_;
  // Only the first epoch_count_ are set: a context is built per call, so nothing else is zeroed.
  std::uint8_t epoch_count_ = 0;
  epoch_tag epochs_[max_epoch_tags];
};

}  // namespace weft::resilience
