// One thread that owns an engine's device and runs its jobs one at a time, in order.
// Model calls are long; they must not sit on libuv's small shared pool, which also serves
// the file system, DNS and zlib for the whole process.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace difface {

class Worker {
 public:
  Worker();
  ~Worker();  // finishes the queued jobs, then joins
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Jobs must not throw: they report their own outcome.
  void post(std::function<void()> job);
  size_t pending() const;

 private:
  void run();

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace difface
