// The execution engine's background compiler (internal to vm-engine,
// included by execution_engine.cpp only).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "vm/engine/execution_engine.hpp"

namespace vm::engine {

// The background compiler of Tier::Optimized regions: its own JITCompiler
// (own LLJIT and TargetMachine, so it never waits for the engine's) and one
// thread. Jobs carry copies of the blocks' IR; results are collected and
// checked against the current translations by the engine thread.
class ExecutionEngine::Background {
public:
  explicit Background(std::unique_ptr<JITCompiler> jit) : jit_(std::move(jit)), thread_([this] { loop(); }) {}
  ~Background() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    for (RegionJob& j : done_)
      if (j.result && *j.result) (void)jit_->release(**j.result);
    for (const CompiledBlock& c : releases_) (void)jit_->release(c);
  }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  JITCompiler& jit() { return *jit_; }
  void submit(RegionJob job) {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(job));
    }
    cv_.notify_one();
  }
  // Frees code of this compiler on the worker, between jobs: release()
  // takes the compiler's lock, which a compile in progress holds for up to
  // a few hundred milliseconds; the engine thread must not wait for it.
  // The code is unlinked already, so nothing runs it in the meantime.
  void release_later(CompiledBlock code) {
    {
      std::lock_guard lock(mutex_);
      releases_.push_back(std::move(code));
    }
    cv_.notify_one();
  }
  [[nodiscard]] bool has_results() const { return ready_.load(std::memory_order_acquire); }
  // No job queued or being compiled.
  [[nodiscard]] bool idle() {
    std::lock_guard lock(mutex_);
    return queue_.empty() && !compiling_;
  }
  std::vector<RegionJob> collect() {
    std::lock_guard lock(mutex_);
    ready_.store(false, std::memory_order_relaxed);
    return std::exchange(done_, {});
  }

private:
  void loop() {
    for (;;) {
      RegionJob job;
      std::vector<CompiledBlock> frees;
      bool have_job = false;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [this] { return stop_ || !queue_.empty() || !releases_.empty(); });
        if (stop_) return;
        frees = std::exchange(releases_, {});
        if (!queue_.empty()) {
          job = std::move(queue_.front());
          queue_.pop_front();
          have_job = true;
          compiling_ = true;
        }
      }
      for (const CompiledBlock& c : frees) (void)jit_->release(c);
      if (!have_job) continue;
      job.result = jit_->compile_region(job.irs, Tier::Optimized, job.unit);
      if (!job.keep_irs) job.irs.clear();
      std::lock_guard lock(mutex_);
      compiling_ = false;
      done_.push_back(std::move(job));
      ready_.store(true, std::memory_order_release);
    }
  }

  std::unique_ptr<JITCompiler> jit_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<RegionJob> queue_;
  std::vector<RegionJob> done_;
  std::vector<CompiledBlock> releases_;
  std::atomic<bool> ready_{false};
  bool stop_ = false;
  bool compiling_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace vm::engine
