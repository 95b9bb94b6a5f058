// Execution speed of compiled blocks versus the vm-ir interpreter, in guest
// instructions per second (items/s), on kernels of lifted x86 code and on an
// SSE-like vector kernel of vm-ir (the x86 frontend does not lift SSE yet;
// there an "item" is one vm-ir op). Compiled code runs at both tiers with the
// Direct memory strategy and with softmmu whose TLB holds the data pages (the
// inline hit path), each also with the restartable state (sync points) that
// `vm run` uses in that mode. Each iteration runs the block once from the same
// state.
#include <benchmark/benchmark.h>

#include <random>

#include "lifted_corpus.hpp"
#include "lowering_harness.hpp"
#include "random_blocks.hpp"
#include "vm/engine/jit.hpp"

using namespace vm;

namespace {

struct Kernel {
  ir::IRBlock block;
  uint64_t items = 0;  // guest instructions (lifted) or vm-ir ops (vector)
  core::X86State state;
};

const Kernel& kernel(int which) {
  static std::map<int, Kernel> cache;
  if (auto it = cache.find(which); it != cache.end()) return it->second;
  Kernel k;
  std::mt19937_64 rng(42 + which);
  if (which == 0) {
    corpus::X86TextGen gen(77);
    auto b = corpus::lifted_block(gen, 200, rng, true, false);
    if (!b) throw std::runtime_error(b.error().to_string());
    k.block = std::move(*b);
    for (const auto& op : k.block.ops) k.items += op.opcode == ir::Opcode::InsnStart;
  } else {
    ir::testing::RandomBlockOptions o;
    o.size = 200;
    o.helpers = false;
    o.division = false;
    o.trap_terminators = false;
    o.bulk = false;  // the kernel as it was before fill and copy existed
    o.regs = {core::X86Reg::Xmm0, core::X86Reg::Xmm1, core::X86Reg::Xmm2, core::X86Reg::Xmm3, core::X86Reg::Xmm4,
              core::X86Reg::Xmm5, core::X86Reg::Mxcsr, core::X86Reg::Rax};
    k.block = ir::testing::random_block(rng, o);
    k.items = k.block.ops.size();
  }
  k.state = testing::random_state(rng);
  k.state.mxcsr = core::kDefaultMxcsr;
  k.state.gpr[15] = corpus::kDataBase;
  return cache.emplace(which, std::move(k)).first->second;
}

const char* kernel_name(int which) { return which == 0 ? "lifted_int200" : "ir_vector200"; }

testing::FlatMemory& memory() {
  static testing::FlatMemory m(corpus::kDataBase, corpus::kDataSize);
  return m;
}

void interpreter(benchmark::State& state) {
  const Kernel& k = kernel(static_cast<int>(state.range(0)));
  ir::HelperTable none;
  ir::Interpreter interp(memory(), none);
  for (auto _ : state) {
    core::X86State s = k.state;
    benchmark::DoNotOptimize(interp.run(k.block, s));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * k.items));
  state.SetLabel(kernel_name(static_cast<int>(state.range(0))));
}

void compiled(benchmark::State& state, translate::MemoryStrategy strategy, bool restartable = false) {
  const Kernel& k = kernel(static_cast<int>(state.range(0)));
  auto tier = static_cast<engine::Tier>(state.range(1));
  engine::JitOptions jo;
  jo.memory = strategy;
  jo.restartable = restartable;
  auto jit = engine::JITCompiler::create(jo);
  if (!jit) return state.SkipWithError(jit.error().to_string().c_str());
  auto c = (*jit)->compile(k.block, tier);
  if (!c) return state.SkipWithError(c.error().to_string().c_str());
  auto ctx = memory().direct_context();
  std::vector<core::TlbEntry> entries(64);
  core::TlbFast tlb{(entries.size() - 1) << core::kTlbEntrySizeLog2, entries.data(), 1u << core::kTlbTagShift};
  if (strategy == translate::MemoryStrategy::SoftMmu) {
    uint64_t page = corpus::kDataBase;
    auto& e = entries[(page >> core::kTlbPageBits) % entries.size()];
    e.addr_read = e.addr_write = page | tlb.tag;
    e.addend = reinterpret_cast<uint64_t>(memory().host() + (page & testing::FlatMemory::kMask)) - page;
    ctx.tlb = &tlb;
  }
  {
    // The compiled block must do what the interpreter does before it is timed.
    core::X86State want = k.state, got = k.state;
    ir::HelperTable none;
    ir::Interpreter interp(memory(), none);
    auto r = interp.run(k.block, want);
    c->entry(&got, &ctx);
    if (!(want == got)) return state.SkipWithError("compiled block disagrees with the interpreter");
    state.counters["ops_executed"] = static_cast<double>(r.ops_executed);
  }
  for (auto _ : state) {
    core::X86State s = k.state;
    benchmark::DoNotOptimize(c->entry(&s, &ctx));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * k.items));
  state.SetLabel(kernel_name(static_cast<int>(state.range(0))));
}

void jit_direct(benchmark::State& s) { compiled(s, translate::MemoryStrategy::Direct); }
void jit_softmmu(benchmark::State& s) { compiled(s, translate::MemoryStrategy::SoftMmu); }
// Direct with the restartable state of `vm run --mmu direct` (sync points after stores).
void jit_direct_restartable(benchmark::State& s) { compiled(s, translate::MemoryStrategy::Direct, true); }
// Softmmu as `vm run --mmu softmmu` compiles it: restartable, fault exits store nothing.
void jit_softmmu_restartable(benchmark::State& s) { compiled(s, translate::MemoryStrategy::SoftMmu, true); }

// kernel: 0 = lifted integer x86 (200 insns), 1 = vm-ir vector ops; tier: 0 = fast, 1 = optimized.
BENCHMARK(interpreter)->ArgName("kernel")->Arg(0)->Arg(1);
BENCHMARK(jit_direct)->ArgNames({"kernel", "tier"})->ArgsProduct({{0, 1}, {0, 1}});
BENCHMARK(jit_softmmu)->ArgNames({"kernel", "tier"})->ArgsProduct({{0, 1}, {0, 1}});
BENCHMARK(jit_direct_restartable)->ArgNames({"kernel", "tier"})->ArgsProduct({{0, 1}, {0, 1}});
BENCHMARK(jit_softmmu_restartable)->ArgNames({"kernel", "tier"})->ArgsProduct({{0, 1}, {0, 1}});

}  // namespace

BENCHMARK_MAIN();
