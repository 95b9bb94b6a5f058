// What the Tlb's statistics cost: the same lookups and misses with
// statistics switched off and on.
#include <benchmark/benchmark.h>

#include "bench_support.hpp"
#include "vm/mem/tlb.hpp"

namespace {

using vm::core::Access;
using vm::core::GuestAddr;
using vm::mem::kPageSize;
using vm::mem::Tlb;
using vm::mem::TlbConfig;
using vm::mem::bench::address_stream;
using vm::mem::bench::BenchPages;

BenchPages& pages() {
  static BenchPages p(4096);
  return p;
}

// 1,000 hits through translate() (the path that counts hits).
void lookups(benchmark::State& state, bool stats) {
  Tlb tlb(pages().pt, TlbConfig{.initial_bits = 10, .stats = stats});
  auto addrs = address_stream(256, 1000);
  for (GuestAddr a : addrs) benchmark::DoNotOptimize(*tlb.translate(a, 8, Access::Read));
  for (auto _ : state) {
    for (GuestAddr a : addrs) {
      auto r = tlb.translate(a, 8, Access::Read);
      benchmark::DoNotOptimize(r);
    }
  }
  state.SetItemsProcessed(state.iterations() * 1000);
  state.counters["hit_rate"] = tlb.stats().hit_rate();
}

// Misses only (4,096 pages in order through 64 entries).
void misses(benchmark::State& state, bool stats) {
  Tlb tlb(pages().pt, TlbConfig{.initial_bits = 6, .min_bits = 6, .max_bits = 6, .stats = stats});
  uint64_t v = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(*tlb.translate(GuestAddr(v * kPageSize + 8), 8, Access::Read));
    v = (v + 1) & 4095;
  }
}

void tlb_lookup_stats_off(benchmark::State& s) { lookups(s, false); }
void tlb_lookup_stats_on(benchmark::State& s) { lookups(s, true); }
void tlb_miss_stats_off(benchmark::State& s) { misses(s, false); }
void tlb_miss_stats_on(benchmark::State& s) { misses(s, true); }

// Reading the statistics (it counts occupancy by scanning the table).
void tlb_stats_snapshot(benchmark::State& state) {
  Tlb tlb(pages().pt, TlbConfig{.initial_bits = 10, .stats = true});
  for (auto _ : state) benchmark::DoNotOptimize(tlb.stats());
}

}  // namespace

BENCHMARK(tlb_lookup_stats_off);
BENCHMARK(tlb_lookup_stats_on);
BENCHMARK(tlb_miss_stats_off);
BENCHMARK(tlb_miss_stats_on);
BENCHMARK(tlb_stats_snapshot);

BENCHMARK_MAIN();
