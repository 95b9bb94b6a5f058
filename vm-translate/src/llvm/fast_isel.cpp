// Preparing LLVM IR for X86 FastISel. FastISel selects a basic block bottom
// up; at the first non-call instruction it cannot select, SelectionDAG takes
// over everything from the start of the block up to it, which in a large
// straight-line block is nearly all of it. A call it cannot lower (an
// intrinsic it does not know, an asm with operands) goes to SelectionDAG on
// its own and FastISel carries on. Two answers, see llvm_lowering.hpp:
// rewrite what has a FastISel-friendly form, isolate the rest.
#include <llvm/Analysis/ValueTracking.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/InlineAsm.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/PatternMatch.h>
#include <llvm/TargetParser/Triple.h>
#include <llvm/Transforms/Utils/Local.h>

#include "vm/translate/llvm_lowering.hpp"

namespace vm::translate {

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

// `select i1 c, i1 a, i1 b` as and/or/xor, which FastISel selects. InstCombine
// writes a logical and/or of flag conditions in this form.
llvm::Value* select_as_logic(llvm::SelectInst& sel) {
  llvm::IRBuilder<> b(&sel);
  llvm::Value* c = sel.getCondition();
  llvm::Value* t = sel.getTrueValue();
  llvm::Value* f = sel.getFalseValue();
  auto is = [](llvm::Value* v, bool one) {
    auto* k = llvm::dyn_cast<llvm::ConstantInt>(v);
    return k && (one ? k->isOne() : k->isZero());
  };
  if (is(t, true)) return b.CreateOr(c, f);                 // c || f
  if (is(f, false)) return b.CreateAnd(c, t);               // c && t
  if (is(t, false)) return b.CreateAnd(b.CreateNot(c), f);  // !c && f
  if (is(f, true)) return b.CreateOr(b.CreateNot(c), t);    // !c || t
  return b.CreateOr(b.CreateAnd(c, t), b.CreateAnd(b.CreateNot(c), f));
}

// One factor of a 128-bit product whose factors fit 64 bits: where its
// 64-bit form comes from, and whether that form read as unsigned / as
// signed has the factor's value.
struct Factor {
  llvm::Value* source = nullptr;  // an i64 constant, or an integer of at most 64 bits
  bool sign_extend = false;       // how `source` widens to 64 bits
  bool as_unsigned = false;
  bool as_signed = false;

  llvm::Value* v64(llvm::IRBuilder<>& b) const {
    return sign_extend ? b.CreateSExt(source, b.getInt64Ty()) : b.CreateZExt(source, b.getInt64Ty());
  }
};

std::optional<Factor> narrow_factor(llvm::Value* v) {
  if (auto* k = llvm::dyn_cast<llvm::ConstantInt>(v)) {
    const llvm::APInt& x = k->getValue();
    Factor f{llvm::ConstantInt::get(llvm::Type::getInt64Ty(v->getContext()), x.trunc(64)), false, x.isIntN(64),
             x.isSignedIntN(64)};
    if (!f.as_unsigned && !f.as_signed) return std::nullopt;
    return f;
  }
  auto* cast = llvm::dyn_cast<llvm::CastInst>(v);
  if (cast == nullptr) return std::nullopt;
  llvm::Value* src = cast->getOperand(0);
  if (!src->getType()->isIntegerTy() || src->getType()->getIntegerBitWidth() > 64) return std::nullopt;
  bool narrower = src->getType()->getIntegerBitWidth() < 64;
  // Narrower than 64 bits, or known non-negative: below 2^63, so the
  // signed reading holds too.
  if (auto* z = llvm::dyn_cast<llvm::ZExtInst>(cast)) return Factor{src, false, true, narrower || z->hasNonNeg()};
  if (llvm::isa<llvm::SExtInst>(cast)) return Factor{src, true, false, true};
  return std::nullopt;
}

// Rewrites one `mul i128` of factors that fit 64 bits, if every use reads
// only the product's low half (a trunc), whether its high half is zero (an
// unsigned compare with 2^64) or its high half shifted right: the x86
// one-operand multiply (mulq, imulq) gives both halves, as an asm call that
// FastISel leaves to SelectionDAG on its own. A shifted high half that is
// not truncated (InstCombine drops the trunc and zext between one 64-bit
// multiply's high half and the next multiply) becomes a zext of the 64-bit
// part, which a later multiply then takes as a factor.
bool rewrite_wide_multiply(llvm::BinaryOperator& mul) {
  using namespace llvm::PatternMatch;
  const llvm::APInt* k = nullptr;
  for (llvm::User* u : mul.users()) {
    if (llvm::isa<llvm::TruncInst>(u)) continue;
    llvm::ICmpInst::Predicate pred;
    if (match(u, m_ICmp(pred, m_Specific(&mul), m_APInt(k))) &&
        ((pred == llvm::ICmpInst::ICMP_ULT && *k == llvm::APInt::getOneBitSet(128, 64)) ||
         (pred == llvm::ICmpInst::ICMP_UGT && *k == llvm::APInt::getLowBitsSet(128, 64))))
      continue;
    if (!match(u, m_LShr(m_Specific(&mul), m_APInt(k))) || k->ult(64) || k->uge(128)) return false;
  }
  auto a = narrow_factor(mul.getOperand(0));
  auto c = narrow_factor(mul.getOperand(1));
  if (!a || !c) return false;
  bool is_signed;
  if (a->as_unsigned && c->as_unsigned)
    is_signed = false;
  else if (a->as_signed && c->as_signed)
    is_signed = true;
  else
    return false;
  llvm::IRBuilder<> b(&mul);
  llvm::Type* i64 = b.getInt64Ty();
  auto* pair = llvm::StructType::get(i64, i64);
  auto* fn = llvm::FunctionType::get(pair, {i64, i64}, false);
  // rdx:rax = rax * operand; no side effects beyond the flags it clobbers.
  auto* op = llvm::InlineAsm::get(fn, is_signed ? "imulq $3" : "mulq $3", "={rax},={rdx},{rax},r,~{flags}", false);
  llvm::Value* both = b.CreateCall(fn, op, {a->v64(b), c->v64(b)}, "wide");
  llvm::Value* lo = b.CreateExtractValue(both, 0, "wide.lo");
  llvm::Value* hi = b.CreateExtractValue(both, 1, "wide.hi");

  std::vector<llvm::Instruction*> users;
  for (llvm::User* u : mul.users()) users.push_back(llvm::cast<llvm::Instruction>(u));
  for (llvm::Instruction* u : users) {
    b.SetInsertPoint(u);
    if (auto* t = llvm::dyn_cast<llvm::TruncInst>(u)) {
      u->replaceAllUsesWith(b.CreateTrunc(lo, t->getType()));
    } else if (auto* cmp = llvm::dyn_cast<llvm::ICmpInst>(u)) {
      bool below = cmp->getPredicate() == llvm::ICmpInst::ICMP_ULT;  // product < 2^64: the high half is 0
      u->replaceAllUsesWith(below ? b.CreateICmpEQ(hi, b.getInt64(0)) : b.CreateICmpNE(hi, b.getInt64(0)));
    } else {
      // Below 2^63 (known before the rewrite): a zext of it is non-negative.
      bool below_2_63 = llvm::computeKnownBits(u, mul.getModule()->getDataLayout()).countMinLeadingZeros() >= 65;
      uint64_t shift = llvm::cast<llvm::ConstantInt>(u->getOperand(1))->getZExtValue() - 64;
      llvm::Value* part = shift ? b.CreateLShr(hi, shift) : hi;
      llvm::Value* wide = nullptr;
      std::vector<llvm::Instruction*> readers;
      for (llvm::User* w : u->users()) readers.push_back(llvm::cast<llvm::Instruction>(w));
      for (llvm::Instruction* r : readers) {
        if (llvm::isa<llvm::TruncInst>(r)) {
          b.SetInsertPoint(r);
          r->replaceAllUsesWith(b.CreateTrunc(part, r->getType()));
          r->eraseFromParent();
          continue;
        }
        if (wide == nullptr) {
          b.SetInsertPoint(u);
          wide = b.CreateZExt(part, mul.getType(), "", below_2_63);
        }
        r->replaceUsesOfWith(u, wide);
      }
    }
    u->eraseFromParent();
  }
  llvm::RecursivelyDeleteTriviallyDeadInstructions(&mul);
  return true;
}

}  // namespace

uint32_t rewrite_fast_isel_rejects(llvm::Module& module) {
  if (llvm::Triple(module.getTargetTriple()).getArch() != llvm::Triple::x86_64) return 0;
  uint32_t rewritten = 0;
  for (llvm::Function& f : module) {
    std::vector<llvm::SelectInst*> selects;
    std::vector<llvm::BinaryOperator*> muls;
    for (llvm::BasicBlock& bb : f)
      for (llvm::Instruction& inst : bb) {
        if (auto* s = llvm::dyn_cast<llvm::SelectInst>(&inst); s && s->getType()->isIntegerTy(1))
          selects.push_back(s);
        else if (inst.getOpcode() == llvm::Instruction::Mul && inst.getType()->isIntegerTy(128))
          muls.push_back(llvm::cast<llvm::BinaryOperator>(&inst));
      }
    for (llvm::SelectInst* s : selects) {
      llvm::Value* v = select_as_logic(*s);
      if (llvm::isa<llvm::Instruction>(v)) v->takeName(s);
      s->replaceAllUsesWith(v);
      s->eraseFromParent();
      ++rewritten;
    }
    // A multiply whose factor is another one's high half waits for that
    // one's rewrite, whatever the order the blocks come in.
    for (bool progress = true; progress;) {
      progress = false;
      for (llvm::BinaryOperator*& m : muls)
        if (m && rewrite_wide_multiply(*m)) {
          m = nullptr;
          ++rewritten;
          progress = true;
        }
    }
  }
  return rewritten;
}

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
