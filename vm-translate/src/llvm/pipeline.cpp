// The lean IR pipeline: the passes that pay off on lifted code (scalar
// replacement, redundancy and dead-store elimination, peepholes, CFG
// clean-up, sinking into cold exits) without the cost of the full O2/O3
// module pipeline.
#include <llvm/IR/Instructions.h>
#include <llvm/IR/Module.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Transforms/Scalar/Sink.h>
#include <llvm/Transforms/Utils/BreakCriticalEdges.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Transforms/InstCombine/InstCombine.h>
#include <llvm/Transforms/Scalar/ADCE.h>
#include <llvm/Transforms/Scalar/DeadStoreElimination.h>
#include <llvm/Transforms/Scalar/EarlyCSE.h>
#include <llvm/Transforms/Scalar/GVN.h>
#include <llvm/Transforms/Scalar/SROA.h>
#include <llvm/Transforms/Scalar/SimplifyCFG.h>

#include "vm/translate/llvm_lowering.hpp"

namespace vm::translate {

void run_lean_pipeline(llvm::Module& module, llvm::TargetMachine* tm) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cam, mam);

  llvm::FunctionPassManager fpm;
  fpm.addPass(llvm::SROAPass(llvm::SROAOptions::ModifyCFG));
  fpm.addPass(llvm::EarlyCSEPass(true));
  fpm.addPass(llvm::InstCombinePass());
  fpm.addPass(llvm::SimplifyCFGPass());
  fpm.addPass(llvm::GVNPass());
  fpm.addPass(llvm::DSEPass());
  fpm.addPass(llvm::ADCEPass());
  fpm.addPass(llvm::SimplifyCFGPass());
  // Values used only on one exit edge (the flags a region stores when it
  // leaves a loop) sink into that edge, not the loop: an edge into a shared
  // exit block is critical, so split those first and fold what stays empty.
  fpm.addPass(llvm::BreakCriticalEdgesPass());
  fpm.addPass(llvm::SinkingPass());
  fpm.addPass(llvm::SimplifyCFGPass());
  llvm::ModulePassManager mpm;
  mpm.addPass(llvm::createModuleToFunctionPassAdaptor(std::move(fpm)));
  mpm.run(module, mam);
}

namespace {

// Instructions X86 FastISel rejects in the IR our lowering produces. Calls are
// left out: FastISel hands a call it cannot lower to SelectionDAG on its own
// and then carries on, so a call never drags its block along.
bool fast_isel_rejects(const llvm::Instruction& inst) {
  if (llvm::isa<llvm::CallBase>(inst) || inst.isTerminator() || llvm::isa<llvm::PHINode>(inst)) return false;
  auto awkward = [](const llvm::Type* t) {
    if (t->isVectorTy()) return true;
    return t->isIntegerTy() && t->getIntegerBitWidth() > 64;
  };
  if (awkward(inst.getType())) return true;
  for (const llvm::Use& u : inst.operands())
    if (awkward(u->getType())) return true;
  return llvm::isa<llvm::SelectInst>(inst) && inst.getType()->isIntegerTy(1);
}

}  // namespace

uint32_t isolate_fast_isel_fallbacks(llvm::Module& module) {
  uint32_t splits = 0;
  for (llvm::Function& f : module) {
    std::vector<llvm::Instruction*> starts;
    for (llvm::BasicBlock& bb : f) {
      bool previous_rejected = true;  // no split before the block's first instruction
      for (llvm::Instruction& inst : bb) {
        if (llvm::isa<llvm::PHINode>(inst) || llvm::isa<llvm::AllocaInst>(inst)) continue;
        bool rejected = fast_isel_rejects(inst);
        if (rejected && !previous_rejected) starts.push_back(&inst);
        previous_rejected = rejected;
      }
    }
    for (llvm::Instruction* inst : starts) {
      inst->getParent()->splitBasicBlock(inst);
      ++splits;
    }
  }
  return splits;
}

}  // namespace vm::translate
