// The lean IR pipeline: the passes that pay off on lifted code (scalar
// replacement, redundancy and dead-store elimination, peepholes, CFG
// clean-up, sinking into cold exits) without the cost of the full O2/O3
// module pipeline.
#include <llvm/ADT/MapVector.h>
#include <llvm/ADT/PostOrderIterator.h>
#include <llvm/Analysis/BlockFrequencyInfo.h>
#include <llvm/Analysis/CycleAnalysis.h>
#include <llvm/IR/CFG.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/IntrinsicInst.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/ProfDataUtils.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Transforms/InstCombine/InstCombine.h>
#include <llvm/Transforms/Scalar/ADCE.h>
#include <llvm/Transforms/Scalar/DeadStoreElimination.h>
#include <llvm/Transforms/Scalar/EarlyCSE.h>
#include <llvm/Transforms/Scalar/GVN.h>
#include <llvm/Transforms/Scalar/JumpThreading.h>
#include <llvm/Transforms/Scalar/SROA.h>
#include <llvm/Transforms/Scalar/SimplifyCFG.h>
#include <llvm/Transforms/Scalar/Sink.h>
#include <llvm/Transforms/Utils/BreakCriticalEdges.h>

#include "vm/translate/llvm_lowering.hpp"

namespace vm::translate {

namespace {

// Where each use of an instruction needs its value: a phi's incoming
// block, or the user's block.
using UsesByBlock = llvm::MapVector<llvm::BasicBlock*, std::vector<llvm::Use*>>;

llvm::BasicBlock* use_block(const llvm::Use& u) {
  auto* user = llvm::cast<llvm::Instruction>(u.getUser());
  if (auto* phi = llvm::dyn_cast<llvm::PHINode>(user)) return phi->getIncomingBlock(u);
  return user->getParent();
}

// Replaces `inst` by a copy in each block of `at`, placed before its first
// user there (for a phi's value, before the block's terminator), and erases it.
void copy_into_using_blocks(llvm::Instruction& inst, UsesByBlock& at) {
  for (auto& [where, uses] : at) {
    llvm::Instruction* copy = inst.clone();
    copy->setName(inst.getName());
    llvm::Instruction* pos = where->getTerminator();
    for (llvm::Use* u : uses) {
      auto* user = llvm::cast<llvm::Instruction>(u->getUser());
      if (!llvm::isa<llvm::PHINode>(user) && user->getParent() == where && user->comesBefore(pos)) pos = user;
    }
    copy->insertBefore(pos);
    for (llvm::Use* u : uses) u->set(copy);
  }
  inst.eraseFromParent();
}

// What a pass that moves instructions but no blocks preserves.
llvm::PreservedAnalyses cfg_kept(bool changed) {
  if (!changed) return llvm::PreservedAnalyses::all();
  llvm::PreservedAnalyses pa;
  pa.preserveSet<llvm::CFGAnalyses>();
  return pa;
}

// Moves pure computations out of cycles into the blocks outside the cycle
// that use them, a copy per using block (LICM's sinking without its
// hoisting and promotion). Flags and other values a region stores only
// when it leaves a loop are otherwise computed in every iteration, because
// several exits use them and Sink only moves an instruction to a single
// successor. Runs after critical edges are split, so each exit edge has a
// block of its own outside the cycle.
//
// Cycles, not loops: every member of a region is also an entry of its
// function (the entry switch on rip), so a region's loops usually have
// more than one way in, and LoopInfo, which knows only natural loops, sees
// none of them (in the bytecode interpreter's dispatch loop, the flags of
// the `cmp` before the jump table stayed on the hot path). CycleInfo sees
// them all. Not every move pays, though: see pays_off.
struct SinkOutOfCyclesPass : llvm::PassInfoMixin<SinkOutOfCyclesPass> {
  static bool movable(const llvm::Instruction& inst) {
    if (llvm::isa<llvm::PHINode>(inst) || inst.isTerminator() || inst.isEHPad() ||
        llvm::isa<llvm::AllocaInst>(inst) || inst.mayHaveSideEffects() || inst.mayReadFromMemory())
      return false;
    if (const auto* call = llvm::dyn_cast<llvm::CallBase>(&inst))  // intrinsics such as ctpop only, no asm
      return llvm::isa<llvm::IntrinsicInst>(call) && call->doesNotAccessMemory() && call->willReturn();
    return true;
  }

  const llvm::CycleInfo* ci_ = nullptr;
  const llvm::BlockFrequencyInfo* bfi_ = nullptr;
  // Per using block: it and the blocks after it up to the first one in a
  // cycle (an exit's path out of the function), where a value that is used
  // is live on entry to the block anyway.
  llvm::DenseMap<const llvm::BasicBlock*, llvm::SmallPtrSet<const llvm::BasicBlock*, 16>> downstream_;

  const llvm::SmallPtrSet<const llvm::BasicBlock*, 16>& downstream(const llvm::BasicBlock* from) {
    auto [it, added] = downstream_.try_emplace(from);
    if (!added) return it->second;
    llvm::SmallPtrSet<const llvm::BasicBlock*, 16> seen{from};
    llvm::SmallVector<const llvm::BasicBlock*, 16> work{from};
    while (!work.empty() && seen.size() < 64) {
      const llvm::BasicBlock* bb = work.pop_back_val();
      if (ci_->getCycle(bb)) continue;
      for (const llvm::BasicBlock* next : llvm::successors(bb))
        if (seen.insert(next).second) work.push_back(next);
    }
    return downstream_[from] = std::move(seen);
  }

  // Whether copying `inst` (in `cycle`, in block `from`) into the blocks of
  // `at` is worth it. Each rule was measured (docs/jit.md):
  // - the using blocks together run at most 4/5 as often (static block
  //   frequencies), so the work really leaves the hot path;
  // - at most one of its operands computed in the cycle must now stay live
  //   up to a using block where it is not live anyway (not a flag's two
  //   inputs kept live up to a far exit instead of the one flag);
  // - a value other than an i1 does not go to a phi of a block inside an
  //   enclosing cycle: that is a register's new value moved onto a hot edge
  //   of the outer cycle, where it is computed as often as before.
  bool pays_off(const llvm::Instruction& inst, const llvm::BasicBlock* from, const llvm::CycleInfo::CycleT* cycle,
                const UsesByBlock& at) {
    uint64_t there = 0;
    for (const auto& entry : at) there = llvm::SaturatingAdd(there, bfi_->getBlockFreq(entry.first).getFrequency());
    if (there > bfi_->getBlockFreq(from).getFrequency() / 5 * 4) return false;
    llvm::SmallPtrSet<const llvm::Value*, 4> extended;
    for (const llvm::Value* op : inst.operands()) {
      const auto* def = llvm::dyn_cast<llvm::Instruction>(op);
      if (!def || !cycle->contains(def->getParent()) || extended.contains(def)) continue;
      for (const auto& entry : at) {
        const auto& after = downstream(entry.first);
        bool live = false;
        for (const llvm::Use& u : def->uses())
          if (u.getUser() != &inst && after.contains(use_block(u))) {
            live = true;
            break;
          }
        if (!live) {
          extended.insert(def);
          break;
        }
      }
    }
    if (extended.size() > 1) return false;
    if (inst.getType()->isIntegerTy(1)) return true;
    for (const auto& [where, uses] : at) {
      if (!ci_->getCycle(where)) continue;
      for (const llvm::Use* u : uses)
        if (llvm::isa<llvm::PHINode>(u->getUser())) return false;
    }
    return true;
  }

  llvm::PreservedAnalyses run(llvm::Function& f, llvm::FunctionAnalysisManager& fam) {
    auto& ci = fam.getResult<llvm::CycleAnalysis>(f);
    if (ci.toplevel_cycles().empty()) return llvm::PreservedAnalyses::all();
    ci_ = &ci;
    bfi_ = &fam.getResult<llvm::BlockFrequencyAnalysis>(f);
    downstream_.clear();
    bool changed = false;
    // Post order: an instruction's users in the cycle (other than phis over
    // a back edge) come before it, so chains move out whole.
    std::vector<llvm::BasicBlock*> order;
    for (llvm::BasicBlock* bb : llvm::post_order(&f)) order.push_back(bb);
    for (llvm::BasicBlock* bb : order) {
      const llvm::CycleInfo::CycleT* cycle = ci.getCycle(bb);
      if (!cycle) continue;
      for (auto it = bb->rbegin(); it != bb->rend();) {
        llvm::Instruction& inst = *it++;
        if (!movable(inst) || inst.use_empty()) continue;
        UsesByBlock at;
        bool ok = true;
        for (llvm::Use& u : inst.uses()) {
          llvm::BasicBlock* where = use_block(u);
          const llvm::CycleInfo::CycleT* outer = ci.getCycle(where);
          // Only to blocks outside this cycle that are not in another cycle of their own.
          if (cycle->contains(where) || (outer && !outer->contains(cycle))) {
            ok = false;
            break;
          }
          at[where].push_back(&u);
        }
        if (!ok || at.empty() || at.size() > 16) continue;
        if (!pays_off(inst, bb, cycle, at)) continue;
        copy_into_using_blocks(inst, at);
        changed = true;
      }
    }
    return cfg_kept(changed);
  }
};

// Moves pure computations whose every use lies on a cold path into those
// paths, a copy per using block. A cold block is one that only unlikely
// edges lead to (branch weights of the lowering: side exits, slow paths'
// fault exits, exit requests), or that only cold blocks lead to. Flags and
// registers that only a trap's or fault's exit stores are then computed
// there instead of before every guest access. Runs after critical edges
// are split, so a value a shared exit block takes through a phi from a
// cold edge has a cold block to go to.
struct SinkIntoColdPathsPass : llvm::PassInfoMixin<SinkIntoColdPathsPass> {
  static bool cold_edge(const llvm::BasicBlock* from, const llvm::BasicBlock* to) {
    const auto* br = llvm::dyn_cast<llvm::BranchInst>(from->getTerminator());
    if (!br || !br->isConditional() || br->getSuccessor(0) == br->getSuccessor(1)) return false;
    llvm::SmallVector<uint32_t, 2> w;
    if (!llvm::extractBranchWeights(*br, w) || w.size() != 2) return false;
    uint64_t mine = br->getSuccessor(0) == to ? w[0] : w[1], total = uint64_t{w[0]} + w[1];
    return total != 0 && mine * 16 <= total;
  }

  llvm::PreservedAnalyses run(llvm::Function& f, llvm::FunctionAnalysisManager&) {
    // Cold blocks, in reverse post order (a block's predecessors first, back edges aside).
    llvm::ReversePostOrderTraversal<llvm::Function*> rpo(&f);
    llvm::SmallPtrSet<const llvm::BasicBlock*, 32> cold;
    for (llvm::BasicBlock* bb : rpo) {
      if (bb->isEntryBlock() || llvm::pred_empty(bb)) continue;
      bool all = true;
      for (llvm::BasicBlock* pred : llvm::predecessors(bb))
        if (!cold.contains(pred) && !cold_edge(pred, bb)) {
          all = false;
          break;
        }
      if (all) cold.insert(bb);
    }
    if (cold.empty()) return llvm::PreservedAnalyses::all();
    bool changed = false;
    std::vector<llvm::BasicBlock*> order;
    for (llvm::BasicBlock* bb : llvm::post_order(&f)) order.push_back(bb);
    for (llvm::BasicBlock* bb : order) {
      if (cold.contains(bb)) continue;
      for (auto it = bb->rbegin(); it != bb->rend();) {
        llvm::Instruction& inst = *it++;
        if (!SinkOutOfCyclesPass::movable(inst) || inst.use_empty()) continue;
        UsesByBlock at;
        bool ok = true;
        for (llvm::Use& u : inst.uses()) {
          llvm::BasicBlock* where = use_block(u);
          if (!cold.contains(where)) {
            ok = false;
            break;
          }
          at[where].push_back(&u);
        }
        if (!ok || at.empty() || at.size() > 64) continue;
        copy_into_using_blocks(inst, at);
        changed = true;
      }
    }
    return cfg_kept(changed);
  }
};

}  // namespace

void run_lean_pipeline(llvm::Module& module, llvm::TargetMachine* tm, bool thread_jumps) {
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
  if (thread_jumps) {
    // softmmu: each access of an access group branches on the group's one
    // TLB check, the next access's branch right after the join of the last
    // one; jump threading sends the hit path straight on (docs/jit.md).
    fpm.addPass(llvm::JumpThreadingPass());
    fpm.addPass(llvm::SimplifyCFGPass());
  }
  // Values used only on one exit edge (the flags a region stores when it
  // leaves a loop) sink into that edge, not the loop: an edge into a shared
  // exit block is critical, so split those first and fold what stays empty.
  fpm.addPass(llvm::BreakCriticalEdgesPass());
  fpm.addPass(SinkOutOfCyclesPass());
  fpm.addPass(SinkIntoColdPathsPass());
  fpm.addPass(llvm::SinkingPass());
  fpm.addPass(llvm::SimplifyCFGPass());
  llvm::ModulePassManager mpm;
  mpm.addPass(llvm::createModuleToFunctionPassAdaptor(std::move(fpm)));
  mpm.run(module, mam);
}

}  // namespace vm::translate
