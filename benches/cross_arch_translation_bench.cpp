// The whole cross-arch pipeline, x86 bytes -> AArch64 / RISC-V relocatable
// object: decode and lift (x86 frontend), lower, lean pipeline, codegen.
// Inputs are lifted-style straight-line integer code (lifted_corpus.hpp):
// small (~10 guest instructions) and large (~300).
#include <benchmark/benchmark.h>

#include <random>

#include "lifted_corpus.hpp"
#include "vm/translate/cross.hpp"

using namespace vm;

namespace {

struct Input {
  core::RegionMemory memory;
  uint32_t insns = 0;
};

const Input& input(uint32_t insns) {
  static std::map<uint32_t, Input> cache;
  if (auto it = cache.find(insns); it != cache.end()) return it->second;
  corpus::X86TextGen gen(insns);
  std::mt19937_64 rng(insns);
  auto code = translate::assemble_x86(gen.sequence(insns, true, false));
  if (!code) throw std::runtime_error(code.error().to_string());
  auto mem = corpus::make_memory(*code, rng);
  if (!mem) throw std::runtime_error(mem.error().to_string());
  return cache.emplace(insns, Input{std::move(*mem), insns}).first->second;
}

void translate_bench(benchmark::State& state, translate::Target target, uint32_t insns) {
  const Input& in = input(insns);
  auto xt = translate::CrossTranslator::create(target);
  if (!xt) return state.SkipWithError(xt.error().to_string().c_str());
  core::RegionMemory mem = in.memory;
  translate::BlockOptions bo;
  bo.max_insns = insns + 1;
  uint64_t bytes = 0;
  for (auto _ : state) {
    auto block = translate::decode_block(mem, core::GuestAddr(corpus::kCodeBase), bo);
    if (!block) return state.SkipWithError(block.error().to_string().c_str());
    auto obj = (*xt)->translate(*block, translate::EmitKind::Object);
    if (!obj) return state.SkipWithError(obj.error().to_string().c_str());
    bytes = obj->size();
  }
  state.counters["guest_insns"] = insns;
  state.counters["object_bytes"] = static_cast<double>(bytes);
}

void x86_to_arm_translation(benchmark::State& s, uint32_t n) { translate_bench(s, translate::Target::AArch64, n); }
void x86_to_riscv_translation(benchmark::State& s, uint32_t n) { translate_bench(s, translate::Target::RiscV64, n); }

BENCHMARK_CAPTURE(x86_to_arm_translation, small, 10)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(x86_to_arm_translation, large, 300)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(x86_to_riscv_translation, small, 10)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(x86_to_riscv_translation, large, 300)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
