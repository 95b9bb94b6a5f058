// JITCompiler on ORC LLJIT. Codegen is done here, not by LLJIT's compile
// layer, so each phase can be timed on its own: lower (vm-translate), optimise
// (vm-translate's lean function pipeline), codegen (one long-lived
// TargetMachine emitting an object into memory) and link (the object added
// to LLJIT under its own ResourceTracker, then the entry symbol looked up).
#include "vm/engine/jit.hpp"

#include <array>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <unistd.h>
#include <unordered_map>

#include <llvm/ExecutionEngine/Orc/Core.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/MapperJITLinkMemoryManager.h>
#include <llvm/ExecutionEngine/Orc/MemoryMapper.h>
#include <llvm/ExecutionEngine/Orc/ObjectLinkingLayer.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/Object/ObjectFile.h>
#include <llvm/Pass.h>
#include <llvm/Support/CommandLine.h>
#include <llvm/Support/SmallVectorMemoryBuffer.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

#include "vm/translate/llvm_lowering.hpp"

// 128-bit division helpers from libgcc, which i128 divisions lower to.
extern "C" {
__int128 __divti3(__int128, __int128);
unsigned __int128 __udivti3(unsigned __int128, unsigned __int128);
__int128 __modti3(__int128, __int128);
unsigned __int128 __umodti3(unsigned __int128, unsigned __int128);
}

namespace vm::engine {

using core::ErrorCode;

std::string_view tier_name(Tier t) { return t == Tier::Fast ? "fast" : "optimized"; }
std::optional<Tier> parse_tier(std::string_view s) {
  if (s == "fast") return Tier::Fast;
  if (s == "optimized" || s == "opt") return Tier::Optimized;
  return std::nullopt;
}
std::optional<Stage> parse_stage(std::string_view s) {
  if (s == "lift" || s == "llvm" || s == "lowered") return Stage::Lowered;
  if (s == "opt" || s == "optimized") return Stage::Optimized;
  if (s == "asm" || s == "codegen") return Stage::Assembly;
  return std::nullopt;
}

namespace {

std::string llvm_error(llvm::Error e) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << e;
  return os.str();
}

double micros_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
}

// Sets one of LLVM's registered command-line options as if it had been given
// on a command line (an explicit occurrence, which some passes check for).
void set_llvm_option(llvm::StringRef name, llvm::StringRef value) {
  auto& registered = llvm::cl::getRegisteredOptions();
  auto it = registered.find(name);
  if (it != registered.end()) (void)it->second->addOccurrence(1, name, value);
}

// A codegen setting for compile time at Tier::Optimized, chosen with
// jit_compilation_bench (docs/jit.md has the figures): no X86 domain
// reassignment, the pass that moves integer logic into AVX-512 mask
// registers. On an AVX-512 host it made Optimized compiles of the
// benchmark's medium and large blocks 1.2x and 1.7x slower, and
// jit_performance shows no change in the speed of the code without it. It
// is an LLVM global, so it also applies to the cross translator in a
// process that has created a JITCompiler (only for x86 targets).
void configure_llvm_globals() { set_llvm_option("disable-x86-domain-reassignment", "true"); }

uint64_t code_section_bytes(llvm::MemoryBufferRef obj) {
  auto file = llvm::object::ObjectFile::createObjectFile(obj);
  if (!file) {
    llvm::consumeError(file.takeError());
    return 0;
  }
  uint64_t n = 0;
  for (const auto& sec : (*file)->sections())
    if (sec.isText()) n += sec.getSize();
  return n;
}

}  // namespace

// The codegen pass manager of the JIT: the target's pipeline without the
// passes that have nothing to do in the functions our lowering generates.
// Each pass of the legacy pipeline costs about a microsecond per compile even
// when it changes nothing; X86 adds 41 of these at CodeGenOptLevel::None and
// 50 at Default (jit.md, "Host JIT and tiers"). Left out, by the name LLVM 19
// gives them:
// - features the lowering never emits: thread-local storage, exception
//   handling and funclets (functions are `nounwind`, without unwind tables),
//   garbage collection and stack maps, AMX tiles, callbr and indirectbr,
//   constant-folding intrinsics, vector-predication intrinsics, memcmp and
//   library calls, debug information;
// - instrumentation and hardening that only an attribute, a module flag or
//   a command-line option asks for, none of which the JIT sets: stack
//   protectors, fentry/mcount, patchable entries, XRay, KCFI, indirect
//   branch tracking, speculative load hardening, LVI and SESES mitigations,
//   retpolines and return thunks, SafeStack, sanitizer metadata, pseudo
//   probes and profile-guided prefetches;
// - passes for other targets or modes: 32-bit PIC base, Atom padding,
//   Windows buffer checks, strict x87 waits, stack-argument rebasing, and
//   the frame-layout remark analysis.
// A pass not named here is kept, so a pass LLVM renames or adds stays in.
class JitPassManager : public llvm::legacy::PassManager {
 public:
  // `without_scheduler`: also leave out the pre-RA machine scheduler (see
  // JITCompiler::Impl::Codegen).
  explicit JitPassManager(bool without_scheduler = false) : without_scheduler_(without_scheduler) {}

  void add(llvm::Pass* pass) override {
    static constexpr std::string_view kLeftOut[] = {
        "Add __emutls_[vt]. variables for emultated TLS model",
        "TLS Variable Hoist",
        "Local Dynamic TLS Access Clean-up",
        "Exception handling preparation",
        "Windows exception handling preparation",
        "Contiguously Lay Out Funclets",
        "Check CFA info and insert CFI instructions if needed",
        "Lower Garbage Collection Instructions",
        "Shadow Stack GC Lowering",
        "Analyze Machine Code For Garbage Collection",
        "Fixup Statepoint Caller Saved",
        "StackMap Liveness Analysis",
        "Lower AMX type for load/store",
        "Lower AMX intrinsics",
        "Tile Register Pre-configure",
        "Tile Register Configure",
        "Fast Tile Register Preconfigure",
        "Fast Tile Register Configure",
        "X86 Lower Tile Copy",
        "Prepare callbr",
        "Expand indirectbr instructions",
        "Lower constant intrinsics",
        "Expand vector predication intrinsics",
        "Merge contiguous icmps into a memcmp",
        "Expand memcmp() to load/stores",
        "Partially inline calls to library functions",
        "Replace intrinsics with calls to vector library",
        "Live DEBUG_VALUE analysis",
        "Remove Redundant DEBUG_VALUE analysis",
        "Insert stack protectors",
        "Insert fentry calls",
        "Instrument function entry/exit with calls to e.g. mcount() (post inlining)",
        "Implement the 'patchable-function' attribute",
        "Insert XRay ops",
        "Insert KCFI indirect call checks",
        "X86 Indirect Branch Tracking",
        "X86 speculative load hardening",
        "X86 Speculative Execution Side Effect Suppression",
        "X86 Load Value Injection (LVI) Load Hardening",
        "X86 Load Value Injection (LVI) Ret-Hardening",
        "X86 Indirect Thunks",
        "X86 Return Thunks",
        "Safe Stack instrumentation pass",
        "Machine Sanitizer Binary Metadata",
        "Pseudo Probe Inserter",
        "X86 Insert Cache Prefetches",
        "X86 Discriminate Memory Operands",
        "X86 PIC Global Base Reg Initialization",
        "X86 Atom pad short functions",
        "X86 Windows Fixup Buffer Security Check",
        "X86 insert wait instruction",
        "Argument Stack Rebase",
        "Stack Frame Layout Analysis",
    };
    std::string_view name(pass->getPassName());
    if (without_scheduler_ && name == "Machine Instruction Scheduler") {
      ++left_out_;
      delete pass;
      return;
    }
    for (std::string_view left_out : kLeftOut)
      if (name == left_out) {
        ++left_out_;
        delete pass;
        return;
      }
    llvm::legacy::PassManager::add(pass);
  }
  // Passes left out of this manager so far (a test checks the list still
  // matches LLVM's names).
  uint32_t left_out() const { return left_out_; }

 private:
  bool without_scheduler_;
  uint32_t left_out_ = 0;
};

// Code memory for the JIT: JITLink's default manager maps fresh pages for
// every object and unmaps them when the object is freed (an mmap, a munmap
// and page faults on the new pages per compile). This one reserves
// kCodeReservation bytes at a time and hands out pages from the
// reservations, which return to it when a unit is freed; permissions are
// still set per object (code read-execute, data read-only or read-write).
// Reservations are kept until the JITCompiler is destroyed; the engine's
// code-cache limit bounds what is live at once.
constexpr size_t kCodeReservation = size_t{1} << 20;

struct JITCompiler::Impl {
  JitOptions options;
  std::unique_ptr<llvm::orc::LLJIT> jit;
  std::unique_ptr<llvm::TargetMachine> tm;
  std::mutex mutex;
  uint64_t next_unit = 1;
  uint64_t releases = 0;
  static constexpr uint64_t kPoolSweep = 256;  // releases between sweeps of the symbol string pool
  // A compiled unit: its code (the tracker), and the words its chained
  // exits use as slots (LoweringOptions::chain_slot_storage), freed with it.
  struct Unit {
    llvm::orc::ResourceTrackerSP tracker;
    std::unique_ptr<void*[]> chain_slots;
  };
  std::unordered_map<uint64_t, Unit> units;
  FILE* perf_map = nullptr;
  // The codegen a compile gets.
  //  - Fast: CodeGenOptLevel::None, FastISel.
  //  - Optimized units with vector operations: CodeGenOptLevel::Default
  //    with SelectionDAG and the whole machine pipeline.
  //  - Other Optimized units: FastISel (up to the first instruction it
  //    rejects, see prepare_for_isel) and the machine pipeline without the
  //    pre-RA machine scheduler, which cost a tenth to a sixth of their
  //    codegen and made `recursion` 1.08x slower at steady state (more
  //    spills in its region); for vector code it paid (`sha256` 1.03-1.07x
  //    slower without it). docs/jit.md, "Host JIT and tiers".
  enum class Codegen : uint8_t { Fast, OptimizedDag, OptimizedFastISel };
  // One object pipeline per kind of codegen, built on first use and reused
  // for every compile: building the legacy codegen pass pipeline cost about
  // a fifth of a small block's compile (callgrind). The stream writes into
  // `buffer`, which each compile takes away. Declared after `tm`, which the
  // passes reference, so they are destroyed first.
  struct ObjectPipeline {
    explicit ObjectPipeline(bool without_scheduler) : pm(without_scheduler) {}
    llvm::SmallVector<char, 0> buffer;
    llvm::raw_svector_ostream stream{buffer};
    JitPassManager pm;
  };
  std::array<std::unique_ptr<ObjectPipeline>, 3> object_pipelines;
  // The LLVMContext compiles build their modules in. Creating one costs
  // about a twentieth of a small block's Fast compile (jit_compilation_bench:
  // 373 -> 353 us), so a context serves kContextUses compiles before it is
  // replaced; a context kept for good would pile up the uniqued constants
  // and types of every block ever compiled.
  static constexpr uint32_t kContextUses = 256;
  std::unique_ptr<llvm::LLVMContext> context;
  uint32_t context_uses = 0;
  llvm::LLVMContext& compile_context() {
    if (!context || context_uses >= kContextUses) {
      context = std::make_unique<llvm::LLVMContext>();
      context_uses = 0;
    }
    ++context_uses;
    return *context;
  }

  ~Impl() {
    if (perf_map) std::fclose(perf_map);
  }

  void optimize(llvm::Module& m) {
    translate::run_lean_pipeline(m, tm.get(), options.memory == translate::MemoryStrategy::SoftMmu);
  }

  // The codegen for a compile of `m` (after the tier's IR pipeline; without
  // a module, an Optimized compile counts as one without vector operations)
  // at `tier`.
  static Codegen codegen_for(Tier tier, const llvm::Module* m) {
    if (tier == Tier::Fast) return Codegen::Fast;
    return m != nullptr && has_vector_ops(*m) ? Codegen::OptimizedDag : Codegen::OptimizedFastISel;
  }

  // Sets the TargetMachine up for codegen `c`.
  void configure_codegen(Codegen c) {
    tm->setOptLevel(c == Codegen::Fast ? llvm::CodeGenOptLevel::None : llvm::CodeGenOptLevel::Default);
    // FastISel at both tiers. At Optimized, instruction selection through
    // SelectionDAG was 40% of a compile (DAG combining spends most of it in
    // known-bits queries over the flag logic, which the lean IR pipeline has
    // already simplified); FastISel followed by the full machine pipeline
    // (greedy allocation, scheduling, peepholes) compiles the benchmark's
    // blocks 25-45% faster with code of about the same speed. Except for
    // Optimized units with vector operations (SSE2 code): there
    // SelectionDAG's code made `strings` 1.16x and `sha256` 1.10x faster at
    // steady state for 4-7% more codegen time, where for integer code it
    // was as fast or, in `recursion`'s region, 1.04x slower (more spills;
    // docs/benchmarks.md, sixteenth session).
    tm->setFastISel(c != Codegen::OptimizedDag);
    tm->setO0WantsFastISel(true);
  }

  // Before codegen, for FastISel (both tiers, except Optimized units with
  // vector operations, which go through SelectionDAG): the instructions it
  // would hand to SelectionDAG with the rest of their block rewritten where
  // they have a form it selects; at Fast, what is left isolated in blocks
  // of its own. The isolation is not used at Optimized: CodeGenPrepare
  // merges the blocks back, and the split code ran 30% slower
  // (jit_performance) for 30% cheaper codegen.
  static void prepare_for_isel(llvm::Module& m, Codegen c) {
    if (c != Codegen::OptimizedDag) translate::rewrite_fast_isel_rejects(m);
    if (c == Codegen::Fast) translate::isolate_fast_isel_fallbacks(m);
  }

  static bool has_vector_ops(const llvm::Module& m) {
    for (const auto& f : m)
      for (const auto& bb : f)
        for (const auto& inst : bb)
          if (inst.getType()->isVectorTy()) return true;
    return false;
  }

  // Emits `m` with codegen `c`, through a pass pipeline of its own.
  core::Result<llvm::SmallVector<char, 0>> emit(llvm::Module& m, llvm::CodeGenFileType kind, Codegen c) {
    configure_codegen(c);
    llvm::SmallVector<char, 0> buf;
    llvm::raw_svector_ostream os(buf);
    JitPassManager pm(c == Codegen::OptimizedFastISel);
    if (tm->addPassesToEmitFile(pm, os, nullptr, kind))
      return core::fail(ErrorCode::Internal, "target cannot emit this file type");
    pm.run(m);
    return buf;
  }

  // The object pipeline for codegen `c`, built on first use; configures
  // the codegen.
  core::Result<ObjectPipeline*> object_pipeline(Codegen c) {
    configure_codegen(c);
    auto& p = object_pipelines[static_cast<size_t>(c)];
    if (!p) {
      auto fresh = std::make_unique<ObjectPipeline>(c == Codegen::OptimizedFastISel);
      if (tm->addPassesToEmitFile(fresh->pm, fresh->stream, nullptr, llvm::CodeGenFileType::ObjectFile))
        return core::fail(ErrorCode::Internal, "target cannot emit an object file");
      p = std::move(fresh);
    }
    return p.get();
  }

  core::Result<llvm::SmallVector<char, 0>> emit_object(llvm::Module& m, Codegen c) {
    auto pipeline = object_pipeline(c);
    if (!pipeline) return std::unexpected(pipeline.error());
    ObjectPipeline* p = *pipeline;
    p->pm.run(m);
    llvm::SmallVector<char, 0> out = std::move(p->buffer);
    p->buffer.clear();
    return out;
  }

  // A module per compile, destroyed once its object is emitted.
  std::unique_ptr<llvm::Module> new_module(std::string_view name, llvm::LLVMContext& ctx) {
    auto m = std::make_unique<llvm::Module>(name, ctx);
    m->setDataLayout(tm->createDataLayout());
    m->setTargetTriple(tm->getTargetTriple().str());
    return m;
  }

  translate::LoweringOptions lowering_options(std::string name, const UnitOptions& unit, Tier tier) const {
    translate::LoweringOptions lo;
    lo.entry_counter = reinterpret_cast<uint64_t>(unit.entry_counter);
    lo.all_entries = unit.all_entries;
    lo.entry_pcs = unit.entry_pcs;
    lo.indirect_members = unit.indirect_members;
    lo.indirect_targets = unit.indirect_targets;
    lo.memory = options.memory;
    lo.target = translate::LoweringTarget::X86_64;
    lo.chain_exits = options.chain_exits;
    lo.inline_jump_cache = options.inline_jump_cache;
    lo.restartable = options.restartable;
    lo.sync_points = unit.sync_points;
    lo.exit_polls = unit.exit_polls;
    lo.direct_guard = options.direct_guard;
    lo.direct_mask = options.memory == translate::MemoryStrategy::Direct ? options.region_mask : 0;
    lo.guest_base_gs = options.guest_base_gs && tier == Tier::Optimized;
    lo.fast_isel = tier == Tier::Fast;
    lo.chain_by_return = tier == Tier::Fast;
    lo.preserve_none = options.preserve_none && tier == Tier::Optimized;
    lo.function_name = std::move(name);
    return lo;
  }
};

JITCompiler::JITCompiler(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JITCompiler::~JITCompiler() = default;
const JitOptions& JITCompiler::options() const { return impl_->options; }

core::Result<std::unique_ptr<JITCompiler>> JITCompiler::create(const JitOptions& options) {
  static std::once_flag init;
  std::call_once(init, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
    configure_llvm_globals();
  });
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb) return core::fail(ErrorCode::Internal, "detecting the host: " + llvm_error(jtmb.takeError()));
  jtmb->setCodeModel(llvm::CodeModel::Small);
  // Position-independent: JIT memory lies far above 2 GiB, and the static
  // model may address a constant pool with an absolute 32-bit displacement
  // (an indexed load from a table of constants), which cannot be linked
  // there. Our own globals (chain slots) are dso_local, so they stay
  // RIP-relative rather than going through the GOT.
  jtmb->setRelocationModel(llvm::Reloc::PIC_);
  auto tm = jtmb->createTargetMachine();
  if (!tm) return core::fail(ErrorCode::Internal, "creating the target machine: " + llvm_error(tm.takeError()));
  impl->tm = std::move(*tm);
  // No eh-frame registration plugin (LLJIT's default layer adds one): the
  // generated functions are nounwind and carry no unwind tables.
  auto jit = llvm::orc::LLJITBuilder()
                 .setJITTargetMachineBuilder(*jtmb)
                 .setObjectLinkingLayerCreator([](llvm::orc::ExecutionSession& es, const llvm::Triple&)
                                                   -> llvm::Expected<std::unique_ptr<llvm::orc::ObjectLayer>> {
                   auto memory = llvm::orc::MapperJITLinkMemoryManager::CreateWithMapper<
                       llvm::orc::InProcessMemoryMapper>(kCodeReservation);
                   if (!memory) return memory.takeError();
                   return std::make_unique<llvm::orc::ObjectLinkingLayer>(es, std::move(*memory));
                 })
                 .create();
  if (!jit) return core::fail(ErrorCode::Internal, "creating LLJIT: " + llvm_error(jit.takeError()));
  impl->jit = std::move(*jit);

  auto& es = impl->jit->getExecutionSession();
  llvm::orc::SymbolMap syms;
  auto add = [&](const char* name, void* addr) {
    syms[es.intern(name)] = {llvm::orc::ExecutorAddr::fromPtr(addr), llvm::JITSymbolFlags::Exported};
  };
  add("__divti3", reinterpret_cast<void*>(&__divti3));
  add("__udivti3", reinterpret_cast<void*>(&__udivti3));
  add("__modti3", reinterpret_cast<void*>(&__modti3));
  add("__umodti3", reinterpret_cast<void*>(&__umodti3));
  if (auto e = impl->jit->getMainJITDylib().define(llvm::orc::absoluteSymbols(std::move(syms))))
    return core::fail(ErrorCode::Internal, "defining runtime symbols: " + llvm_error(std::move(e)));

  if (options.perf_map) impl->perf_map = std::fopen(fmt::format("/tmp/perf-{}.map", getpid()).c_str(), "a");
  return std::unique_ptr<JITCompiler>(new JITCompiler(std::move(impl)));
}

core::Result<CompiledBlock> JITCompiler::compile(const ir::IRBlock& block, Tier tier) {
  return compile_region(std::span<const ir::IRBlock>(&block, 1), tier);
}

core::Result<CompiledBlock> JITCompiler::compile_region(std::span<const ir::IRBlock> blocks, Tier tier,
                                                        const UnitOptions& unit) {
  if (blocks.empty()) return core::fail(ErrorCode::InvalidArgument, "nothing to compile");
  Impl& im = *impl_;
  std::lock_guard lock(im.mutex);
  CompiledBlock out;
  out.start_pc = blocks[0].start_pc;
  out.tier = tier;
  out.unit = im.next_unit++;
  std::string name = fmt::format("vm_{:x}_u{}", blocks[0].start_pc.value(), out.unit);

  auto t0 = std::chrono::steady_clock::now();
  llvm::LLVMContext& context = im.compile_context();
  auto module = im.new_module(name, context);
  translate::LoweringOptions lo = im.lowering_options(name, unit, tier);
  out.call = lo.preserve_none ? translate::UnitCall::PreserveNone : translate::UnitCall::C;
  // Chain slots in memory of our own rather than globals of the object,
  // which the linker would have to lay out, relocate and look up: at most
  // one per exit_if and two per terminator.
  std::unique_ptr<void*[]> slot_storage;
  if (lo.chain_exits) {
    size_t exits = 0;
    for (const ir::IRBlock& b : blocks) {
      exits += 2;
      for (const ir::Op& op : b.ops) exits += op.opcode == ir::Opcode::ExitIf;
    }
    slot_storage.reset(new void*[exits]());
    lo.chain_slot_storage = slot_storage.get();
    lo.chain_slot_capacity = exits;
  }
  auto lowered = translate::lower_region(blocks, *module, lo);
  if (!lowered) return std::unexpected(lowered.error());
  out.stats.lower_us = micros_since(t0);
  out.stats.ir_instructions = lowered->ir_instructions;

  t0 = std::chrono::steady_clock::now();
  if (tier == Tier::Optimized) {
    im.optimize(*module);
    out.stats.ir_instructions_optimized = translate::count_instructions(*module);
  } else {
    out.stats.ir_instructions_optimized = out.stats.ir_instructions;
  }
  const Impl::Codegen codegen = Impl::codegen_for(tier, module.get());
  Impl::prepare_for_isel(*module, codegen);
  out.stats.optimize_us = micros_since(t0);

  t0 = std::chrono::steady_clock::now();
  auto obj = im.emit_object(*module, codegen);
  if (!obj) return std::unexpected(obj.error());
  module.reset();
  auto buffer = std::make_unique<llvm::SmallVectorMemoryBuffer>(std::move(*obj), name, false);
  out.stats.code_bytes = code_section_bytes(buffer->getMemBufferRef());
  out.code_size = out.stats.code_bytes;
  out.stats.codegen_us = micros_since(t0);

  t0 = std::chrono::steady_clock::now();
  auto rt = im.jit->getMainJITDylib().createResourceTracker();
  if (auto e = im.jit->addObjectFile(rt, std::move(buffer)))
    return core::fail(ErrorCode::Internal, "adding object: " + llvm_error(std::move(e)));
  auto sym = im.jit->lookup(name);
  if (!sym) {
    std::string msg = llvm_error(sym.takeError());
    llvm::consumeError(rt->remove());
    return core::fail(ErrorCode::Internal, "linking " + name + ": " + msg);
  }
  out.entry = sym->toPtr<translate::BlockFn>();
  // Chain slots and the jump cache mark preserve_none entries in bit 0
  // (translate::kPreserveNoneTag), so no entry may have it set; the
  // lowering aligns functions to 16 bytes.
  if ((reinterpret_cast<uint64_t>(out.entry) & translate::kPreserveNoneTag) != 0) {
    llvm::consumeError(rt->remove());
    return core::fail(ErrorCode::Internal, "unit " + name + " has an odd entry address");
  }
  for (const auto& slot : lowered->chain_slots) {
    if (slot.storage) {
      out.chain_slots.push_back(slot.storage);
      out.chain_targets.push_back(slot.target);
      continue;
    }
    auto s = im.jit->lookup(slot.symbol);
    if (!s) {
      std::string msg = llvm_error(s.takeError());
      llvm::consumeError(rt->remove());
      return core::fail(ErrorCode::Internal, "chain slot " + slot.symbol + ": " + msg);
    }
    out.chain_slots.push_back(s->toPtr<void**>());
    out.chain_targets.push_back(slot.target);
  }
  out.stats.link_us = micros_since(t0);
  im.units.emplace(out.unit, Impl::Unit{std::move(rt), std::move(slot_storage)});
  if (im.perf_map) {
    std::fprintf(im.perf_map, "%lx %lx vm_block_%lx_%s\n", reinterpret_cast<unsigned long>(out.entry),
                 static_cast<unsigned long>(out.code_size), static_cast<unsigned long>(out.start_pc.value()),
                 std::string(tier_name(tier)).c_str());
    std::fflush(im.perf_map);
  }
  return out;
}

core::Result<uint32_t> JITCompiler::codegen_passes_left_out(Tier tier) {
  std::lock_guard lock(impl_->mutex);
  auto pipeline = impl_->object_pipeline(Impl::codegen_for(tier, nullptr));
  if (!pipeline) return std::unexpected(pipeline.error());
  return (*pipeline)->pm.left_out();
}

core::Result<void> JITCompiler::release(const CompiledBlock& block) {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->units.find(block.unit);
  if (it == impl_->units.end()) return core::failf(ErrorCode::NotFound, "no compiled unit {}", block.unit);
  Impl::Unit unit = std::move(it->second);  // its chain slots outlive the code
  impl_->units.erase(it);
  if (auto e = unit.tracker->remove()) return core::fail(ErrorCode::Internal, "freeing code: " + llvm_error(std::move(e)));
  // Every unit's symbols have names of their own (vm_<pc>_u<unit>), which
  // ORC interns in the session's string pool; a freed unit leaves its
  // entries there, unreferenced, until the pool is swept. Without sweeping,
  // a compile-and-free loop grew the process by about 80 bytes per unit.
  if (++impl_->releases % Impl::kPoolSweep == 0)
    impl_->jit->getExecutionSession().getSymbolStringPool()->clearDeadEntries();
  return {};
}

size_t JITCompiler::live_units() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->units.size();
}

core::Result<std::string> JITCompiler::dump(const ir::IRBlock& block, Tier tier, Stage stage) {
  return dump_region(std::span<const ir::IRBlock>(&block, 1), tier, stage);
}

core::Result<std::string> JITCompiler::dump_region(std::span<const ir::IRBlock> blocks, Tier tier, Stage stage,
                                                   const UnitOptions& unit) {
  if (blocks.empty()) return core::fail(ErrorCode::InvalidArgument, "nothing to dump");
  Impl& im = *impl_;
  std::lock_guard lock(im.mutex);
  std::string name = fmt::format("vm_{:x}", blocks[0].start_pc.value());
  llvm::LLVMContext context;
  auto module = im.new_module(name, context);
  translate::LoweringOptions lo = im.lowering_options(name, unit, tier);
  auto lowered = translate::lower_region(blocks, *module, lo);
  if (!lowered) return std::unexpected(lowered.error());
  Impl::Codegen codegen = Impl::Codegen::Fast;
  if (stage != Stage::Lowered) {
    if (tier == Tier::Optimized) im.optimize(*module);
    codegen = Impl::codegen_for(tier, module.get());
    Impl::prepare_for_isel(*module, codegen);
  }
  if (stage == Stage::Assembly) {
    auto text = im.emit(*module, llvm::CodeGenFileType::AssemblyFile, codegen);
    if (!text) return std::unexpected(text.error());
    return std::string(text->begin(), text->end());
  }
  std::string s;
  llvm::raw_string_ostream os(s);
  module->print(os, nullptr);
  return os.str();
}

}  // namespace vm::engine
