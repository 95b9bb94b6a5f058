// Lookup cost of the per-CPU Tlb and the shared lock-free ConcurrentTlb:
// hits, a batch of 1,000 lookups, miss + refill, lookups from several
// threads, and lookups while another thread keeps flushing.
#include <benchmark/benchmark.h>

#include <atomic>
#include <memory>
#include <thread>

#include "bench_support.hpp"
#include "vm/mem/concurrent_tlb.hpp"
#include "vm/mem/tlb.hpp"

namespace {

using vm::core::Access;
using vm::core::GuestAddr;
using vm::mem::ConcurrentTlb;
using vm::mem::Tlb;
using vm::mem::TlbConfig;
using vm::mem::bench::address_stream;
using vm::mem::bench::BenchPages;

constexpr uint64_t kHotPages = 256;  // fits the 1,024-entry tables: every lookup hits

BenchPages& pages() {
  static BenchPages p(4096);
  return p;
}

template <class T>
void warm(T& tlb, const std::vector<GuestAddr>& addrs) {
  for (GuestAddr a : addrs) benchmark::DoNotOptimize(*tlb.translate(a, 8, Access::Read));
}

// One hit per iteration, cycling through 4,096 addresses on 256 hot pages.
template <class T>
void hit(benchmark::State& state, T& tlb) {
  auto addrs = address_stream(kHotPages, 4096);
  warm(tlb, addrs);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(tlb.lookup(addrs[i], 8, Access::Read));
    i = (i + 1) & 4095;
  }
}

void tlb_hit(benchmark::State& state) {
  Tlb tlb(pages().pt, TlbConfig{.initial_bits = 10});
  hit(state, tlb);
}

void concurrent_tlb_hit(benchmark::State& state) {
  ConcurrentTlb tlb(pages().pt, 10);
  hit(state, tlb);
}

template <class T>
void batch_1000(benchmark::State& state, T& tlb) {
  auto addrs = address_stream(kHotPages, 1000);
  warm(tlb, addrs);
  for (auto _ : state) {
    for (GuestAddr a : addrs) benchmark::DoNotOptimize(tlb.lookup(a, 8, Access::Read));
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}

void tlb_lookup_batch_1000(benchmark::State& state) {
  Tlb tlb(pages().pt, TlbConfig{.initial_bits = 10});
  batch_1000(state, tlb);
}

void concurrent_tlb_lookup_batch_1000(benchmark::State& state) {
  ConcurrentTlb tlb(pages().pt, 10);
  batch_1000(state, tlb);
}

// Every access misses: 4,096 pages walked in order through a 64-entry
// table (and past the 8-entry victim TLB), so each one is a miss + refill.
template <class T>
void miss_refill(benchmark::State& state, T& tlb) {
  uint64_t v = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(*tlb.translate(GuestAddr(v * vm::mem::kPageSize + 64), 8, Access::Read));
    v = (v + 1) & 4095;
  }
}

void tlb_miss_refill(benchmark::State& state) {
  Tlb tlb(pages().pt, TlbConfig{.initial_bits = 6, .min_bits = 6, .max_bits = 6});
  miss_refill(state, tlb);
}

void concurrent_tlb_miss_refill(benchmark::State& state) {
  ConcurrentTlb tlb(pages().pt, 6);
  miss_refill(state, tlb);
}

// One shared table, 1..N threads each doing batches of 1,000 lookups.
ConcurrentTlb* g_shared = nullptr;

void concurrent_tlb_lookup(benchmark::State& state) {
  auto addrs = address_stream(kHotPages, 1000, 7 + static_cast<uint64_t>(state.thread_index()));
  if (state.thread_index() == 0) {
    g_shared = new ConcurrentTlb(pages().pt, 10);
    warm(*g_shared, address_stream(kHotPages, 4096));
  }
  // Google Benchmark starts the timed loop of all threads together, after
  // thread 0's set-up above.
  for (auto _ : state) {
    for (GuestAddr a : addrs) {
      auto r = g_shared->translate(a, 8, Access::Read);
      benchmark::DoNotOptimize(r);
    }
  }
  state.SetItemsProcessed(state.iterations() * 1000);
  if (state.thread_index() == 0) {
    delete g_shared;
    g_shared = nullptr;
  }
}

// Lookups (refilling on a miss) while a second thread flushes single pages
// of the working set as fast as it can.
void concurrent_tlb_lookup_during_flush(benchmark::State& state) {
  ConcurrentTlb tlb(pages().pt, 10);
  auto addrs = address_stream(kHotPages, 1000);
  warm(tlb, addrs);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> flushes{0};
  std::thread flusher([&] {
    uint64_t v = 0, n = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      tlb.flush_page(GuestAddr((v % kHotPages) * vm::mem::kPageSize));
      v += 97;
      ++n;
    }
    flushes = n;
  });
  for (auto _ : state) {
    for (GuestAddr a : addrs) {
      auto r = tlb.translate(a, 8, Access::Read);
      benchmark::DoNotOptimize(r);
    }
  }
  stop = true;
  flusher.join();
  state.SetItemsProcessed(state.iterations() * 1000);
  state.counters["flushes"] = static_cast<double>(flushes.load());
}

}  // namespace

BENCHMARK(tlb_hit);
BENCHMARK(concurrent_tlb_hit);
BENCHMARK(tlb_lookup_batch_1000);
BENCHMARK(concurrent_tlb_lookup_batch_1000);
BENCHMARK(tlb_miss_refill);
BENCHMARK(concurrent_tlb_miss_refill);
BENCHMARK(concurrent_tlb_lookup)->ThreadRange(1, 4)->UseRealTime();
BENCHMARK(concurrent_tlb_lookup_during_flush)->UseRealTime();

BENCHMARK_MAIN();
