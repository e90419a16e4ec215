// host_pool.cpp: persistent workers for the host backend. Threads are created once, on the
// first job large enough to need them, so a routing call never pays thread start-up.
#include "host_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace {

// Below this much work (rows * experts) a job runs on the calling thread: waking workers
// costs a few microseconds, more than routing a handful of rows.
constexpr int64_t kInlineWork = int64_t{1} << 16;

class Pool {
 public:
  void run(int64_t rows, int64_t work_per_row, ts_row_body body, void* context) {
    const int wanted = desired_threads();
    if (wanted <= 1 || rows < 2 || rows * work_per_row < kInlineWork) {
      body(context, 0, rows);
      return;
    }
    std::lock_guard<std::mutex> serial(submit_mutex_);
    ensure_workers(wanted - 1);
    const int64_t chunk = std::max<int64_t>(1, rows / (int64_t{wanted} * 8));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      body_ = body;
      context_ = context;
      rows_ = rows;
      chunk_ = chunk;
      next_.store(0);
      active_ = static_cast<int>(workers_.size());
      ++generation_;
    }
    wake_.notify_all();
    drain();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return active_ == 0; });
  }

  void set_threads(int32_t threads) { requested_.store(threads < 0 ? 0 : threads); }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      ++generation_;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

 private:
  int desired_threads() const {
    const int32_t r = requested_.load();
    if (r > 0) return r;
    const unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : static_cast<int>(std::min(hw, 64u));
  }

  void ensure_workers(int count) {
    while (static_cast<int>(workers_.size()) < count) workers_.emplace_back([this] { worker(); });
  }

  void drain() {
    for (;;) {
      const int64_t begin = next_.fetch_add(chunk_);
      if (begin >= rows_) return;
      body_(context_, begin, std::min(rows_, begin + chunk_));
    }
  }

  void worker() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (stopping_) return;
      }
      drain();
      std::lock_guard<std::mutex> lock(mutex_);
      if (--active_ == 0) done_.notify_one();
    }
  }

  std::mutex submit_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  std::atomic<int32_t> requested_{0};
  std::atomic<int64_t> next_{0};
  ts_row_body body_ = nullptr;
  void* context_ = nullptr;
  int64_t rows_ = 0, chunk_ = 1;
  int active_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
};

Pool& pool() {
  static Pool instance;
  return instance;
}

}  // namespace

void ts_parallel_rows(int64_t rows, int64_t work_per_row, ts_row_body body, void* context) {
  pool().run(rows, work_per_row, body, context);
}

void ts_set_host_threads(int32_t threads) { pool().set_threads(threads); }
