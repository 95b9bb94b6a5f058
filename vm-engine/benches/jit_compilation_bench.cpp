// Compile time of the JIT on lifted x86 code (the x86 frontend's output for
// random straight-line integer code, see lifted_corpus.hpp, after the standard
// vm-ir passes, which is what the engine hands the JIT): small (~10 guest
// instructions), medium (~300) and large (>1000) blocks at both tiers, with
// two sets of options:
//  - `fast`, `optimized`: the JIT's defaults (direct memory, no chaining),
//    as `vm exec --engine jit` and `vm translate --target host` compile;
//  - `fast_engine`, `optimized_engine`: the options `vm run` compiles with
//    over direct memory (restartable code without sync points, the guard
//    zone, GS-relative guest memory at Optimized, chained exits with the
//    inline jump cache, the preserve_none convention; Fast code counts its
//    entries for promotion).
// Each iteration lowers, optimises (Optimized only), generates code, links
// and then frees one block. Counters: guest instructions, code bytes, and
// the mean time of each phase in microseconds.
#include <benchmark/benchmark.h>

#include <array>
#include <random>

#include "lifted_corpus.hpp"
#include "vm/engine/jit.hpp"
#include "vm/ir/passes.hpp"
#include "vm/mem/address_space.hpp"

using namespace vm;

namespace {

enum class Options { Defaults, Engine };

std::unique_ptr<engine::JITCompiler> make_jit(Options o) {
  engine::JitOptions jo;
  if (o == Options::Engine) {  // as ExecutionEngine::create sets them for a Direct space
    jo.restartable = true;
    jo.direct_guard = mem::AddressSpace::kDirectGuard;
    jo.guest_base_gs = true;  // only changes what is compiled; nothing here runs the code
    jo.chain_exits = true;
    jo.inline_jump_cache = true;
    jo.preserve_none = true;
  }
  auto r = engine::JITCompiler::create(jo);
  if (!r) throw std::runtime_error(r.error().to_string());
  return std::move(*r);
}

engine::JITCompiler& jit(Options o) {
  static auto defaults = make_jit(Options::Defaults);
  static auto engine_options = make_jit(Options::Engine);
  return o == Options::Engine ? *engine_options : *defaults;
}

uint32_t guest_insns(const ir::IRBlock& b) {
  uint32_t n = 0;
  for (const auto& op : b.ops) n += op.opcode == ir::Opcode::InsnStart;
  return n;
}

const ir::IRBlock& block_of(uint32_t insns) {
  static std::map<uint32_t, ir::IRBlock> cache;
  auto it = cache.find(insns);
  if (it != cache.end()) return it->second;
  corpus::X86TextGen gen(insns);
  std::mt19937_64 rng(insns);
  // Large blocks use register operands only, so 1100 instructions fit in the block's 4 KiB page.
  auto b = corpus::lifted_block(gen, insns, rng, insns < 1000, false);
  if (!b) throw std::runtime_error(b.error().to_string());
  ir::run_standard_passes(*b);
  return cache.emplace(insns, std::move(*b)).first->second;
}

void compile_bench(benchmark::State& state, uint32_t insns, engine::Tier tier, Options o) {
  const ir::IRBlock& block = block_of(insns);
  engine::JITCompiler& j = jit(o);
  // What ExecutionEngine::compile asks of a block under `vm run` (precise
  // faults off: no sync points; a tiered Fast block counts its entries).
  engine::UnitOptions unit;
  std::array<uint64_t, 2> promo = {0, uint64_t{1} << 62};
  if (o == Options::Engine) {
    unit.sync_points = false;
    if (tier == engine::Tier::Fast) unit.entry_counter = promo.data();
  }
  engine::CompileStats sum;
  uint64_t n = 0;
  for (auto _ : state) {
    auto c = j.compile_region(std::span<const ir::IRBlock>(&block, 1), tier, unit);
    if (!c) {
      state.SkipWithError(c.error().to_string().c_str());
      return;
    }
    sum.lower_us += c->stats.lower_us;
    sum.optimize_us += c->stats.optimize_us;
    sum.codegen_us += c->stats.codegen_us;
    sum.link_us += c->stats.link_us;
    sum.code_bytes = c->stats.code_bytes;
    sum.ir_instructions = c->stats.ir_instructions;
    sum.ir_instructions_optimized = c->stats.ir_instructions_optimized;
    ++n;
    state.PauseTiming();
    (void)j.release(*c);
    state.ResumeTiming();
  }
  double d = n ? static_cast<double>(n) : 1.0;
  state.counters["guest_insns"] = guest_insns(block);
  state.counters["code_bytes"] = static_cast<double>(sum.code_bytes);
  state.counters["ir_insns"] = sum.ir_instructions;
  state.counters["ir_insns_opt"] = sum.ir_instructions_optimized;
  state.counters["lower_us"] = sum.lower_us / d;
  state.counters["optimize_us"] = sum.optimize_us / d;
  state.counters["codegen_us"] = sum.codegen_us / d;
  state.counters["link_us"] = sum.link_us / d;
}

void jit_compile_small_block(benchmark::State& s, engine::Tier tier, Options o) { compile_bench(s, 10, tier, o); }
void jit_compile_medium_block(benchmark::State& s, engine::Tier tier, Options o) { compile_bench(s, 300, tier, o); }
void jit_compile_large_block(benchmark::State& s, engine::Tier tier, Options o) { compile_bench(s, 1100, tier, o); }

constexpr auto kFast = engine::Tier::Fast;
constexpr auto kOpt = engine::Tier::Optimized;
BENCHMARK_CAPTURE(jit_compile_small_block, fast, kFast, Options::Defaults)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(jit_compile_small_block, optimized, kOpt, Options::Defaults)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(jit_compile_medium_block, fast, kFast, Options::Defaults)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(jit_compile_medium_block, optimized, kOpt, Options::Defaults)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(jit_compile_large_block, fast, kFast, Options::Defaults)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(jit_compile_large_block, optimized, kOpt, Options::Defaults)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(jit_compile_small_block, fast_engine, kFast, Options::Engine)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(jit_compile_small_block, optimized_engine, kOpt, Options::Engine)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(jit_compile_medium_block, fast_engine, kFast, Options::Engine)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(jit_compile_medium_block, optimized_engine, kOpt, Options::Engine)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(jit_compile_large_block, fast_engine, kFast, Options::Engine)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(jit_compile_large_block, optimized_engine, kOpt, Options::Engine)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
