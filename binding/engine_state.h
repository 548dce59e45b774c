// What an engine handle shares with the generators it made: the engine and its worker thread.
#pragma once

#include <atomic>
#include <memory>

#include "../cpp/engine.h"
#include "../cpp/worker.h"

namespace binding {

// Only ever destroyed on the main thread (jobs pin the JavaScript handles instead of holding
// this), so the worker is never asked to join itself.
struct EngineState : std::enable_shared_from_this<EngineState> {
  std::unique_ptr<difface::Engine> engine;  // touched only on the worker thread
  difface::Worker worker;
  std::atomic<bool> disposed{false};

  // Marks the engine disposed: running calls stop at their next step, later ones are refused.
  // The networks are freed once the calls queued before have finished.
  void dispose() {
    if (!disposed.exchange(true)) freeNetworks();
  }

  // Frees the networks on the worker after the calls queued before, without refusing what
  // needs only the worker (the generators' draws): for an engine handle the collector took.
  void freeNetworks() {
    worker.post([this] { engine.reset(); });
  }
};

}  // namespace binding
