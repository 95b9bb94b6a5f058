// CrossTranslator: one TargetMachine per translator, reused for every
// translation; each translation builds a fresh module of N block functions
// plus a function-pointer table, then emits it as object, assembly or IR.
#include "vm/translate/cross.hpp"

#include <mutex>

#include <llvm/IR/Constants.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Target/TargetOptions.h>

#include "vm/translate/llvm_lowering.hpp"

extern "C" {
void LLVMInitializeX86TargetInfo();
void LLVMInitializeX86Target();
void LLVMInitializeX86TargetMC();
void LLVMInitializeX86AsmPrinter();
void LLVMInitializeAArch64TargetInfo();
void LLVMInitializeAArch64Target();
void LLVMInitializeAArch64TargetMC();
void LLVMInitializeAArch64AsmPrinter();
void LLVMInitializeRISCVTargetInfo();
void LLVMInitializeRISCVTarget();
void LLVMInitializeRISCVTargetMC();
void LLVMInitializeRISCVAsmPrinter();
}

namespace vm::translate {

using core::ErrorCode;

std::string_view target_name(Target t) {
  switch (t) {
    case Target::X86_64: return "x86_64";
    case Target::AArch64: return "aarch64";
    case Target::RiscV64: return "riscv64";
  }
  return "?";
}
std::optional<Target> parse_target(std::string_view s) {
  if (s == "x86_64" || s == "host" || s == "x86-64") return Target::X86_64;
  if (s == "aarch64" || s == "arm64") return Target::AArch64;
  if (s == "riscv64" || s == "rv64gc") return Target::RiscV64;
  return std::nullopt;
}
std::optional<EmitKind> parse_emit_kind(std::string_view s) {
  if (s == "obj" || s == "object") return EmitKind::Object;
  if (s == "asm" || s == "assembly") return EmitKind::Assembly;
  if (s == "llvm" || s == "ll") return EmitKind::LlvmIr;
  return std::nullopt;
}

struct CrossTranslator::Impl {
  Target target = Target::AArch64;
  CrossOptions options;
  std::unique_ptr<llvm::TargetMachine> tm;
  std::mutex mutex;
};

CrossTranslator::CrossTranslator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CrossTranslator::~CrossTranslator() = default;
Target CrossTranslator::target() const { return impl_->target; }
std::string CrossTranslator::triple() const { return impl_->tm->getTargetTriple().str(); }

core::Result<std::unique_ptr<CrossTranslator>> CrossTranslator::create(Target target, const CrossOptions& options) {
  static std::once_flag init;
  std::call_once(init, [] {
    LLVMInitializeX86TargetInfo();
    LLVMInitializeX86Target();
    LLVMInitializeX86TargetMC();
    LLVMInitializeX86AsmPrinter();
    LLVMInitializeAArch64TargetInfo();
    LLVMInitializeAArch64Target();
    LLVMInitializeAArch64TargetMC();
    LLVMInitializeAArch64AsmPrinter();
    LLVMInitializeRISCVTargetInfo();
    LLVMInitializeRISCVTarget();
    LLVMInitializeRISCVTargetMC();
    LLVMInitializeRISCVAsmPrinter();
  });
  std::string triple, cpu, features;
  llvm::TargetOptions to;
  switch (target) {
    case Target::X86_64: triple = "x86_64-unknown-linux-gnu"; cpu = "x86-64-v2"; break;
    case Target::AArch64: triple = "aarch64-unknown-linux-gnu"; cpu = "generic"; features = "+neon,+fp-armv8"; break;
    case Target::RiscV64:
      triple = "riscv64-unknown-linux-gnu";
      cpu = "generic-rv64";
      features = "+m,+a,+f,+d,+c";
      to.MCOptions.ABIName = "lp64d";
      break;
  }
  std::string err;
  const llvm::Target* t = llvm::TargetRegistry::lookupTarget(triple, err);
  if (!t) return core::failf(ErrorCode::Unsupported, "no LLVM target for {}: {}", triple, err);
  auto impl = std::make_unique<Impl>();
  impl->target = target;
  impl->options = options;
  impl->tm.reset(t->createTargetMachine(triple, cpu, features, to, llvm::Reloc::PIC_, llvm::CodeModel::Small,
                                        options.optimize ? llvm::CodeGenOptLevel::Default : llvm::CodeGenOptLevel::None));
  if (!impl->tm) return core::failf(ErrorCode::Internal, "cannot create a target machine for {}", triple);
  return std::unique_ptr<CrossTranslator>(new CrossTranslator(std::move(impl)));
}

core::Result<std::string> CrossTranslator::translate(std::span<const ir::IRBlock> blocks, EmitKind kind) {
  if (blocks.empty()) return core::fail(ErrorCode::InvalidArgument, "nothing to translate");
  std::lock_guard lock(impl_->mutex);
  llvm::LLVMContext ctx;
  llvm::Module module("vm_cross", ctx);
  module.setTargetTriple(impl_->tm->getTargetTriple().str());
  module.setDataLayout(impl_->tm->createDataLayout());
  if (impl_->target == Target::RiscV64) module.addModuleFlag(llvm::Module::Error, "target-abi", llvm::MDString::get(ctx, "lp64d"));

  LoweringOptions lo;
  lo.memory = impl_->options.memory;
  lo.target = impl_->target == Target::AArch64   ? LoweringTarget::AArch64
              : impl_->target == Target::RiscV64 ? LoweringTarget::RiscV64
                                                 : LoweringTarget::X86_64;
  std::vector<llvm::Constant*> fns;
  for (size_t i = 0; i < blocks.size(); ++i) {
    lo.function_name = fmt::format("{}{}", impl_->options.symbol_prefix, i);
    auto r = lower_block(blocks[i], module, lo);
    if (!r) {
      auto e = r.error();
      e.message = fmt::format("block {} ({:#x}): {}", i, blocks[i].start_pc.value(), e.message);
      return std::unexpected(e);
    }
    fns.push_back(r->function);
  }
  auto* ptr = llvm::PointerType::get(ctx, 0);
  auto* arr_ty = llvm::ArrayType::get(ptr, fns.size());
  // getOrInsertGlobal rather than `new GlobalVariable`: g++ 12 misreports LLVM's placement operator new.
  auto* table = llvm::cast<llvm::GlobalVariable>(module.getOrInsertGlobal(impl_->options.symbol_prefix + "table", arr_ty));
  table->setInitializer(llvm::ConstantArray::get(arr_ty, fns));
  table->setConstant(true);
  auto* i64 = llvm::Type::getInt64Ty(ctx);
  auto* count = llvm::cast<llvm::GlobalVariable>(module.getOrInsertGlobal(impl_->options.symbol_prefix + "count", i64));
  count->setInitializer(llvm::ConstantInt::get(i64, fns.size()));
  count->setConstant(true);

  if (impl_->options.optimize)
    run_lean_pipeline(module, impl_->tm.get(), impl_->options.memory == MemoryStrategy::SoftMmu);

  std::string out;
  if (kind == EmitKind::LlvmIr) {
    llvm::raw_string_ostream os(out);
    module.print(os, nullptr);
    return os.str();
  }
  llvm::SmallVector<char, 0> buf;
  llvm::raw_svector_ostream os(buf);
  llvm::legacy::PassManager pm;
  auto ft = kind == EmitKind::Object ? llvm::CodeGenFileType::ObjectFile : llvm::CodeGenFileType::AssemblyFile;
  if (impl_->tm->addPassesToEmitFile(pm, os, nullptr, ft))
    return core::fail(ErrorCode::Internal, "the target cannot emit this file type");
  pm.run(module);
  return std::string(buf.begin(), buf.end());
}

}  // namespace vm::translate
