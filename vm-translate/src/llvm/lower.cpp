// vm-ir -> LLVM IR. One Lowerer builds one function for a block or a region.
//
// Guest registers are cached per register in SSA values of their storage
// type (i1 for flags, iN for integer registers, <2 x i64> for xmm) and written
// back only when control leaves: at exits (including the side exits of
// run-time traps, which store the registers dirty at that point, so faults are
// precise) and before helper calls, after which the cache is empty. In a
// region, values cross internal edges in per-register slots (allocas that
// SROA promotes), and every exit stores what the region writes. Float
// semantics follow the interpreter bit for bit: NaN results are fixed up in
// the integer domain to x86's rules (first NaN operand quieted, else the
// default NaN 0xffc00000 / 0xfff8...), so AArch64 and RISC-V hosts with other
// default NaNs give x86 answers, and rounding modifiers other than
// nearest-even switch the host rounding mode with llvm.set.rounding around
// constrained (strictfp) operations.
#include <algorithm>
#include <array>
#include <optional>
#include <unordered_map>

#include <llvm/ADT/StringMap.h>
#include <llvm/IR/Constants.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/InlineAsm.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/IntrinsicsAArch64.h>
#include <llvm/IR/IntrinsicsX86.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/MDBuilder.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include "vm/ir/verifier.hpp"
#include "vm/translate/llvm_lowering.hpp"
#include "sync_points.hpp"

namespace vm::translate {

std::string_view memory_strategy_name(MemoryStrategy s) {
  return s == MemoryStrategy::Direct ? "direct" : "softmmu";
}

namespace {

using core::ErrorCode;
using core::RegKind;
using detail::insns_reading_memory;
using detail::flags_set_before_observed;
using detail::stores_needing_sync;
using ir::Lane;
using ir::Opcode;
using ir::Rounding;
using ir::TermKind;
using ir::Type;
using llvm::Value;

constexpr uint32_t kNearest = 1;  // llvm.set.rounding / FLT_ROUNDS encoding of nearest-even

class Lowerer {
public:
  Lowerer(llvm::Module& module, const LoweringOptions& options)
      : mod_(module), ctx_(module.getContext()), b_(ctx_), opts_(options) {}

  core::Result<LoweredFunction> run(std::span<const ir::IRBlock> blocks) {
    if (blocks.empty()) return core::fail(ErrorCode::InvalidArgument, "nothing to lower");
    for (const auto& blk : blocks) {
      if (auto v = ir::verify(blk); !v) return std::unexpected(v.error());
    }
    if (mod_.getFunction(opts_.function_name))
      return core::failf(ErrorCode::AlreadyExists, "function {} already exists", opts_.function_name);

    i8_ = b_.getInt8Ty();
    i32_ = b_.getInt32Ty();
    i64_ = b_.getInt64Ty();
    ptr_ = b_.getPtrTy();
    v128_ = llvm::FixedVectorType::get(i64_, 2);
    auto* fty = llvm::FunctionType::get(i64_, {ptr_, ptr_}, false);
    fn_ = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, opts_.function_name, mod_);
    fn_->addParamAttr(0, llvm::Attribute::NoAlias);
    fn_->addParamAttr(0, llvm::Attribute::NoCapture);
    fn_->addParamAttr(1, llvm::Attribute::NoCapture);
    fn_->addFnAttr(llvm::Attribute::NoUnwind);
    fn_->addFnAttr("frame-pointer", "none");
    state_ = fn_->getArg(0);
    mem_ = fn_->getArg(1);
    state_->setName("state");
    mem_->setName("mem");

    for (const auto& blk : blocks)
      for (const auto& op : blk.ops)
        if (ir::opcode_info(op.opcode).mod == ir::ModKind::Round && static_cast<Rounding>(op.mod) != Rounding::Rne)
          strict_ = true;
    if (strict_) {
      fn_->addFnAttr(llvm::Attribute::StrictFP);
      b_.setIsFPConstrained(true);
      b_.setDefaultConstrainedRounding(llvm::RoundingMode::Dynamic);
      b_.setDefaultConstrainedExcept(llvm::fp::ebIgnore);
    }

    auto* entry = llvm::BasicBlock::Create(ctx_, "entry", fn_);
    b_.SetInsertPoint(entry);
    slow_buf_ = b_.CreateAlloca(llvm::ArrayType::get(i8_, 16), nullptr, "slowbuf");
    if (opts_.fast_isel && restartable()) sink_slot_ = b_.CreateAlloca(i64_, nullptr, "load_sink");
    slow_buf_->setAlignment(llvm::Align(16));
    operand_buf_ = b_.CreateAlloca(llvm::ArrayType::get(i8_, 32), nullptr, "operands");
    operand_buf_->setAlignment(llvm::Align(16));
    if (opts_.memory == MemoryStrategy::Direct) {
      guest_base_ = b_.CreateLoad(ptr_, mem_field(kMemCtxGuestBase), "guest_base");
      region_mask_ = b_.CreateLoad(i64_, mem_field(kMemCtxRegionMask), "region_mask");
    } else {
      tlb_ = b_.CreateLoad(ptr_, mem_field(kMemCtxTlb), "tlb");
      llvm::MDBuilder mdb(ctx_);
      llvm::MDNode* domain = mdb.createAnonymousAliasScopeDomain("vm");
      guest_scope_ = llvm::MDNode::get(ctx_, {mdb.createAnonymousAliasScope(domain, "guest memory")});
      tlb_scope_ = llvm::MDNode::get(ctx_, {mdb.createAnonymousAliasScope(domain, "tlb")});
    }
    if (blocks.size() > 1) init_region_slots(blocks);
    for (size_t i = 0; i < blocks.size(); ++i) {
      block_entries_.push_back(llvm::BasicBlock::Create(ctx_, fmt::format("block_{:x}", blocks[i].start_pc.value()), fn_));
      block_pcs_.push_back(blocks[i].start_pc.value());
      // A lone block's jump to its own start returns to the caller like any
      // exit ("runs once"); only a real region keeps its edges inside.
      if (blocks.size() > 1) region_index_.emplace(blocks[i].start_pc.value(), i);
    }
    if (blocks.size() > 1) {
      for (const auto& blk : blocks)
        if (blk.term.kind == TermKind::Call)
          if (auto it = region_index_.find(blk.term.fallthrough.value()); it != region_index_.end())
            return_sites_.push_back(it->second);
      std::sort(return_sites_.begin(), return_sites_.end());
      return_sites_.erase(std::unique(return_sites_.begin(), return_sites_.end()), return_sites_.end());
      if (restartable()) compute_entry_unsynced(blocks);
    }
    if (opts_.entry_counter != 0) {
      // Promotion counter: nothing of the guest state is loaded yet, so
      // returning here leaves the state exactly as it was on entry.
      Value* counter = b_.CreateIntToPtr(c64(opts_.entry_counter), ptr_, "counter");
      Value* n = b_.CreateAdd(b_.CreateAlignedLoad(i64_, counter, llvm::Align(8)), c64(1));
      b_.CreateAlignedStore(n, counter, llvm::Align(8));
      auto* promote = llvm::BasicBlock::Create(ctx_, "promote", fn_);
      Value* due_count = b_.CreateAlignedLoad(i64_, b_.CreateConstInBoundsGEP1_64(i8_, counter, 8), llvm::Align(8));
      Value* due = b_.CreateICmpEQ(n, due_count);
      b_.CreateCondBr(due, promote, block_entries_[0],
                      llvm::MDBuilder(ctx_).createUnlikelyBranchWeights());
      b_.SetInsertPoint(promote);
      reset_block_state();
      b_.CreateAlignedStore(c64(blocks[0].start_pc.value()), rip_ptr(), llvm::Align(8));
      b_.CreateRet(c64(encode_exit(TermKind::Jump)));
    } else if (opts_.all_entries && blocks.size() > 1) {
      Value* rip = b_.CreateAlignedLoad(i64_, rip_ptr(), llvm::Align(8), "entry_rip");
      auto* sw = b_.CreateSwitch(rip, block_entries_[0], static_cast<unsigned>(blocks.size() - 1));
      for (size_t i = 1; i < blocks.size(); ++i) sw->addCase(b_.getInt64(blocks[i].start_pc.value()), block_entries_[i]);
    } else {
      b_.CreateBr(block_entries_[0]);
    }
    for (size_t i = 0; i < blocks.size(); ++i) {
      b_.SetInsertPoint(block_entries_[i]);
      cur_block_ = i;
      reset_block_state();
      unsynced_ = entry_unsynced_.empty() ? RegSet{} : entry_unsynced_[i];
      sync_pending_ = false;
      // An internal edge may continue a span that read.
      span_read_ = region_ && (entry_span_read_.empty() || entry_span_read_[i]);
      if (auto r = lower_block_body(blocks[i]); !r) return std::unexpected(r.error());
    }

    std::string err;
    llvm::raw_string_ostream os(err);
    if (llvm::verifyFunction(*fn_, &os)) {
      fn_->eraseFromParent();
      return core::failf(ErrorCode::Internal, "lowering produced invalid LLVM IR: {}", os.str());
    }
    LoweredFunction out;
    out.function = fn_;
    out.chain_slots = std::move(chain_slots_);
    for (const auto& bb : *fn_) out.ir_instructions += static_cast<uint32_t>(bb.size());
    return out;
  }

private:
  struct RegCache {
    Value* value = nullptr;
    bool dirty = false;
  };

  llvm::Module& mod_;
  llvm::LLVMContext& ctx_;
  llvm::IRBuilder<> b_;
  const LoweringOptions& opts_;
  llvm::Function* fn_ = nullptr;
  Value* state_ = nullptr;
  Value* mem_ = nullptr;
  llvm::IntegerType* i8_ = nullptr;
  llvm::IntegerType* i32_ = nullptr;
  llvm::IntegerType* i64_ = nullptr;
  llvm::PointerType* ptr_ = nullptr;
  llvm::FixedVectorType* v128_ = nullptr;
  llvm::AllocaInst* slow_buf_ = nullptr;
  llvm::AllocaInst* sink_slot_ = nullptr;  // fast_isel: where consume_loads stores the loads' xor
  llvm::AllocaInst* operand_buf_ = nullptr;
  Value* guest_base_ = nullptr;
  Value* region_mask_ = nullptr;
  Value* tlb_ = nullptr;
  // SoftMmu alias scopes: a guest access through a TLB entry's host pointer
  // never touches the TLB itself (guest RAM and the TLB are separate host
  // allocations), so the TLB's index mask, table and tag stay in registers
  // across guest stores; only calls (slow paths, helpers) reload them.
  llvm::MDNode* guest_scope_ = nullptr;
  llvm::MDNode* tlb_scope_ = nullptr;
  bool strict_ = false;

  std::vector<llvm::BasicBlock*> block_entries_;
  std::vector<uint64_t> block_pcs_;
  std::unordered_map<uint64_t, size_t> region_index_;
  std::vector<ChainSlot> chain_slots_;

  // Regions only. Across the region's internal edges a guest register lives
  // in a slot (an alloca that SROA turns into SSA values and phis), not in
  // the state: an internal edge stores nothing to the state, and every exit
  // stores the registers the region writes (`written_`). Returning exits
  // share one block (`common_exit_`) whose phis take the registers' values.
  bool region_ = false;
  size_t cur_block_ = 0;
  std::array<llvm::AllocaInst*, core::kNumX86Regs> slots_{};
  std::array<bool, core::kNumX86Regs> written_{};
  llvm::BasicBlock* common_exit_ = nullptr;
  llvm::PHINode* exit_rip_ = nullptr;
  llvm::PHINode* exit_code_ = nullptr;
  std::array<llvm::PHINode*, core::kNumX86Regs> exit_vals_{};
  // Members that follow a call of the region: where its returns may land.
  std::vector<size_t> return_sites_;

  // SoftMmu: guest accesses of one block at constant offsets from the same
  // value (push/pop sequences, a frame's spills), grouped per direction.
  // The first access of a group checks the TLB once for the bytes the whole
  // group touches; when that hits, every access of the group uses the
  // entry's addend without a check of its own, otherwise each takes its
  // usual path (so faults stay precise). A helper call ends the groups
  // before it, since a helper (a syscall) may change the mappings.
  struct AccessGroup {
    ir::ValueId root = ir::kNoValue;
    int64_t lo = 0, hi = 0;  // byte offsets from root: [lo, hi)
    bool write = false;
    uint32_t members = 0;
    Value* hit = nullptr;      // emitted at the first member
    Value* host_lo = nullptr;  // host address of root + lo when hit
  };
  std::vector<AccessGroup> groups_;
  std::vector<int32_t> op_group_;    // per op of the block: its group, or -1
  std::vector<int64_t> op_offset_;   // per op: its access's offset from the group root
  AccessGroup* cur_group_ = nullptr;  // the group of the op being lowered
  int64_t cur_offset_ = 0;

  // LoweringOptions::restartable. `unsynced_`: registers whose value may
  // differ from the state's (set since the last sync point); a sync is due
  // at the next instruction boundary or internal edge once the current
  // instruction has stored to guest memory or called a helper. Regions start
  // each member with the registers that may be unsynced on some internal
  // edge into it (`entry_unsynced_`, a forward dataflow over the members).
  using RegSet = std::array<bool, core::kNumX86Regs>;
  RegSet unsynced_{};
  bool sync_pending_ = false;
  std::vector<RegSet> entry_unsynced_;
  std::vector<bool> entry_span_read_;
  std::vector<bool> insn_reads_;  // per op of the block: an insn marker whose instruction reads memory
  size_t cur_op_ = 0;
  bool span_read_ = false;        // an instruction since the last sync point read memory
  Value* load_sink_ = nullptr;    // restartable: xor of the loads not yet taken by an asm (sink_load)
  std::vector<bool> store_syncs_;  // per op of the block: a store that makes a sync point due
  std::vector<uint64_t> flags_reset_;  // per op of the block: flags_set_before_observed

  // Per-block state.
  std::array<RegCache, core::kNumX86Regs> regs_{};
  std::vector<Value*> vals_;
  std::vector<Type> types_;
  core::GuestAddr insn_pc_;
  Value* cur_mode_ = nullptr;      // rounding mode currently installed (a constant or a run-time value)
  Value* dyn_mode_ = nullptr;      // mode derived from mxcsr_for_mode_
  Value* mxcsr_for_mode_ = nullptr;

  // ------------------------------------------------------------ basics ----
  Value* mem_field(size_t off) { return b_.CreateConstInBoundsGEP1_64(i8_, mem_, off); }
  Value* state_field(uint64_t off) { return b_.CreateConstInBoundsGEP1_64(i8_, state_, off); }
  llvm::ConstantInt* c32(uint64_t v) { return b_.getInt32(static_cast<uint32_t>(v)); }
  llvm::ConstantInt* c64(uint64_t v) { return b_.getInt64(v); }

  llvm::Type* ty(Type t) {
    switch (t) {
      case Type::Void: return b_.getVoidTy();
      case Type::I1: return b_.getInt1Ty();
      case Type::I8: return i8_;
      case Type::I16: return b_.getInt16Ty();
      case Type::I32: return i32_;
      case Type::I64: return i64_;
      case Type::I128: return b_.getInt128Ty();
      case Type::F32: return b_.getFloatTy();
      case Type::F64: return b_.getDoubleTy();
      case Type::V128: return v128_;
    }
    return nullptr;
  }
  llvm::Type* lane_elem(Lane l) {
    switch (l) {
      case Lane::F32: return b_.getFloatTy();
      case Lane::F64: return b_.getDoubleTy();
      default: return b_.getIntNTy(ir::lane_bits(l));
    }
  }
  llvm::FixedVectorType* lane_vec(Lane l) { return llvm::FixedVectorType::get(lane_elem(l), ir::lane_count(l)); }
  llvm::FixedVectorType* int_lane_vec(Lane l) {
    return llvm::FixedVectorType::get(b_.getIntNTy(ir::lane_bits(l)), ir::lane_count(l));
  }
  Value* as_lanes(Value* v, Lane l) { return b_.CreateBitCast(v, lane_vec(l)); }
  Value* as_int_lanes(Value* v, Lane l) { return b_.CreateBitCast(v, int_lane_vec(l)); }
  Value* to_v128(Value* v) { return b_.CreateBitCast(v, v128_); }

  // Integer type of the same shape as a float (vector) type.
  llvm::Type* int_like(llvm::Type* t) {
    if (auto* vt = llvm::dyn_cast<llvm::FixedVectorType>(t))
      return llvm::FixedVectorType::get(b_.getIntNTy(vt->getScalarSizeInBits()), vt->getNumElements());
    return b_.getIntNTy(t->getPrimitiveSizeInBits());
  }
  Value* splat_like(llvm::Type* t, uint64_t v) {
    auto* st = t->getScalarType();
    uint32_t bits = st->getIntegerBitWidth();
    llvm::Constant* c = llvm::ConstantInt::get(st, bits >= 64 ? v : v & ((uint64_t{1} << bits) - 1));
    if (auto* vt = llvm::dyn_cast<llvm::FixedVectorType>(t)) return llvm::ConstantVector::getSplat(vt->getElementCount(), c);
    return c;
  }

  // ------------------------------------------------- rounding modes ----
  Value* mode_for(Rounding rm) {
    switch (rm) {
      case Rounding::Rne: return c32(1);
      case Rounding::Rdn: return c32(3);
      case Rounding::Rup: return c32(2);
      case Rounding::Rtz: return c32(0);
      case Rounding::Dyn: {
        Value* mx = get_full(core::X86Reg::Mxcsr);
        if (mx != mxcsr_for_mode_ || dyn_mode_ == nullptr) {
          // MXCSR.RC 0..3 (nearest, down, up, zero) -> FLT_ROUNDS 1, 3, 2, 0, packed two bits each.
          Value* rc = b_.CreateAnd(b_.CreateLShr(mx, 13), 3);
          dyn_mode_ = b_.CreateAnd(b_.CreateLShr(c32(0x2d), b_.CreateShl(rc, 1)), 3, "dyn_mode");
          mxcsr_for_mode_ = mx;
        }
        return dyn_mode_;
      }
    }
    return c32(kNearest);
  }
  void install_mode(Value* mode) {
    if (mode != cur_mode_) {
      b_.CreateIntrinsic(llvm::Intrinsic::set_rounding, {}, {mode});
      cur_mode_ = mode;
    }
    if (strict_) b_.setDefaultConstrainedRounding(constrained_rounding(mode));
  }
  // The installed mode as the rounding argument of the constrained ops that
  // follow. A static mode lets LLVM fold constants in that mode; with
  // "dynamic" it folds exact results as if rounding to nearest, which gives
  // x - x = +0 where rounding down wants -0.
  static llvm::RoundingMode constrained_rounding(Value* mode) {
    if (auto* c = llvm::dyn_cast<llvm::ConstantInt>(mode)) {
      switch (c->getZExtValue()) {
        case 0: return llvm::RoundingMode::TowardZero;
        case 1: return llvm::RoundingMode::NearestTiesToEven;
        case 2: return llvm::RoundingMode::TowardPositive;
        case 3: return llvm::RoundingMode::TowardNegative;
        default: break;
      }
    }
    return llvm::RoundingMode::Dynamic;
  }
  void ensure_rounding(Rounding rm) { install_mode(mode_for(rm)); }
  // Host code outside (exits, helpers, slow paths) runs in the default mode.
  void restore_nearest_for_exit() {
    if (cur_mode_ != c32(kNearest)) b_.CreateIntrinsic(llvm::Intrinsic::set_rounding, {}, {c32(kNearest)});
  }

  void reset_block_state() {
    regs_.fill(RegCache{});
    vals_.clear();
    types_.clear();
    cur_mode_ = c32(kNearest);
    dyn_mode_ = nullptr;
    mxcsr_for_mode_ = nullptr;
    load_sink_ = nullptr;
  }

  // ------------------------------------------------------ registers ----
  static llvm::Align reg_align(const core::RegInfo& ri) {
    return llvm::Align(ri.size >= 16 ? 16 : ri.size);
  }
  llvm::Type* reg_storage_ty(const core::RegInfo& ri) {
    switch (ri.kind) {
      case RegKind::Flag: return b_.getInt1Ty();
      case RegKind::I16: return b_.getInt16Ty();
      case RegKind::I32: return i32_;
      case RegKind::I64: return i64_;
      case RegKind::V128: return v128_;
    }
    return nullptr;
  }
  Value* get_full(core::X86Reg r) {
    auto& c = regs_[static_cast<size_t>(r)];
    if (c.value) return c.value;
    c.value = region_ ? current(static_cast<size_t>(r)) : load_state_reg(b_, core::reg_info(r));
    return c.value;
  }
  // The register's current value, from the cache or (regions) its slot.
  Value* current(size_t i) {
    if (regs_[i].value) return regs_[i].value;
    return b_.CreateLoad(slots_[i]->getAllocatedType(), slots_[i], std::string(core::kX86Regs[i].name));
  }
  Value* load_state_reg(llvm::IRBuilder<>& b, const core::RegInfo& ri) {
    if (ri.kind == RegKind::Flag)
      return b.CreateTrunc(b.CreateLoad(i8_, b.CreateConstInBoundsGEP1_64(i8_, state_, ri.offset), std::string(ri.name)),
                           b.getInt1Ty());
    return b.CreateAlignedLoad(reg_storage_ty(ri), b.CreateConstInBoundsGEP1_64(i8_, state_, ri.offset), reg_align(ri),
                               std::string(ri.name));
  }
  void store_state_reg(llvm::IRBuilder<>& b, const core::RegInfo& ri, Value* v) {
    if (ri.kind == RegKind::Flag) v = b.CreateZExt(v, i8_);
    b.CreateAlignedStore(v, b.CreateConstInBoundsGEP1_64(i8_, state_, ri.offset), reg_align(ri));
  }
  // A slot for every register the region reads or writes (MXCSR too: the
  // rounding of float ops may read it), filled from the state on entry.
  void init_region_slots(std::span<const ir::IRBlock> blocks) {
    region_ = true;
    std::array<bool, core::kNumX86Regs> used{};
    used[static_cast<size_t>(core::X86Reg::Mxcsr)] = true;
    for (const auto& blk : blocks)
      for (const auto& op : blk.ops) {
        if (op.opcode != Opcode::GetReg && op.opcode != Opcode::SetReg) continue;
        used[op.aux] = true;
        if (op.opcode == Opcode::SetReg) written_[op.aux] = true;
      }
    for (size_t i = 0; i < used.size(); ++i) {
      if (!used[i]) continue;
      const auto& ri = core::kX86Regs[i];
      slots_[i] = b_.CreateAlloca(reg_storage_ty(ri), nullptr, fmt::format("{}.slot", ri.name));
      b_.CreateStore(load_state_reg(b_, ri), slots_[i]);
    }
  }
  // Regions: the state may have changed under a helper call; refill the slots.
  void reload_slots() {
    for (size_t i = 0; i < slots_.size(); ++i)
      if (slots_[i]) b_.CreateStore(load_state_reg(b_, core::kX86Regs[i]), slots_[i]);
  }
  // Regions: an internal edge leaves the block's changes in the slots.
  void spill_to_slots() {
    for (size_t i = 0; i < regs_.size(); ++i)
      if (regs_[i].dirty) b_.CreateStore(regs_[i].value, slots_[i]);
  }
  // Regions: branches to the shared returning exit (rounding already restored).
  void leave_region(Value* rip, uint64_t code) {
    if (!common_exit_) {
      common_exit_ = llvm::BasicBlock::Create(ctx_, "region_exit", fn_);
      llvm::IRBuilder<> eb(common_exit_);
      exit_rip_ = eb.CreatePHI(i64_, 8, "exit_rip");
      exit_code_ = eb.CreatePHI(i64_, 8, "exit_code");
      for (size_t i = 0; i < written_.size(); ++i)
        if (written_[i]) exit_vals_[i] = eb.CreatePHI(slots_[i]->getAllocatedType(), 8);
      for (size_t i = 0; i < written_.size(); ++i)
        if (written_[i]) store_state_reg(eb, core::kX86Regs[i], exit_vals_[i]);
      eb.CreateAlignedStore(exit_rip_, eb.CreateConstInBoundsGEP1_64(i8_, state_, core::reg_info(core::X86Reg::Rip).offset),
                            llvm::Align(8));
      eb.CreateRet(exit_code_);
    }
    std::array<Value*, core::kNumX86Regs> vals{};
    for (size_t i = 0; i < written_.size(); ++i)
      if (written_[i]) vals[i] = current(i);
    auto* from = b_.GetInsertBlock();
    b_.CreateBr(common_exit_);
    exit_rip_->addIncoming(rip, from);
    exit_code_->addIncoming(c64(code), from);
    for (size_t i = 0; i < written_.size(); ++i)
      if (written_[i]) exit_vals_[i]->addIncoming(vals[i], from);
  }
  void set_full(core::X86Reg r, Value* v) {
    auto& c = regs_[static_cast<size_t>(r)];
    c.value = v;
    c.dirty = true;
    unsynced_[static_cast<size_t>(r)] = true;
  }
  // Writes every dirty register back to the state (the cache stays valid);
  // in a region, every register the region writes.
  void store_dirty() {
    if (region_) {
      for (size_t i = 0; i < written_.size(); ++i)
        if (written_[i]) store_state_reg(b_, core::kX86Regs[i], current(i));
      return;
    }
    for (size_t i = 0; i < regs_.size(); ++i)
      if (regs_[i].dirty) store_state_reg(b_, core::kX86Regs[i], regs_[i].value);
  }
  void flush_and_forget() {
    store_dirty();
    unsynced_.fill(false);
    regs_.fill(RegCache{});
    dyn_mode_ = nullptr;
    mxcsr_for_mode_ = nullptr;
  }

  Value* read_reg(const ir::Op& op) {
    auto r = static_cast<core::X86Reg>(op.aux);
    const auto& ri = core::reg_info(r);
    Value* full = get_full(r);
    llvm::Type* t = ty(op.type);
    uint32_t bits = ir::type_bits(op.type);
    uint32_t off = static_cast<uint32_t>(op.imm);
    if (ri.kind == RegKind::Flag) return full;
    if (bits == ri.size * 8) return b_.CreateBitCast(full, t);
    if (ri.kind == RegKind::V128 && (off * 8) % bits == 0) {
      auto* vt = llvm::FixedVectorType::get(t, 128 / bits);
      return b_.CreateExtractElement(b_.CreateBitCast(full, vt), off * 8 / bits);
    }
    Value* wide = b_.CreateBitCast(full, b_.getIntNTy(ri.size * 8));
    if (off) wide = b_.CreateLShr(wide, off * 8);
    return b_.CreateBitCast(b_.CreateTrunc(wide, b_.getIntNTy(bits)), t);
  }
  void write_reg(const ir::Op& op, Value* v, Type vt) {
    auto r = static_cast<core::X86Reg>(op.aux);
    const auto& ri = core::reg_info(r);
    uint32_t bits = ir::type_bits(vt);
    uint32_t off = static_cast<uint32_t>(op.imm);
    if (ri.kind == RegKind::Flag) return set_full(r, v);
    if (bits == ri.size * 8) return set_full(r, b_.CreateBitCast(v, reg_storage_ty(ri)));
    Value* full = get_full(r);
    if (ri.kind == RegKind::V128 && (off * 8) % bits == 0) {
      auto* vec_t = llvm::FixedVectorType::get(ty(vt), 128 / bits);
      Value* nv = b_.CreateInsertElement(b_.CreateBitCast(full, vec_t), v, off * 8 / bits);
      return set_full(r, b_.CreateBitCast(nv, v128_));
    }
    auto* wt = b_.getIntNTy(ri.size * 8);
    Value* wide = b_.CreateBitCast(full, wt);
    llvm::APInt mask = llvm::APInt::getBitsSet(ri.size * 8, off * 8, off * 8 + bits);
    Value* part = b_.CreateZExt(b_.CreateBitCast(v, b_.getIntNTy(bits)), wt);
    if (off) part = b_.CreateShl(part, off * 8);
    Value* merged = b_.CreateOr(b_.CreateAnd(wide, llvm::ConstantInt::get(wt, ~mask)), part);
    set_full(r, b_.CreateBitCast(merged, reg_storage_ty(ri)));
  }

  // ------------------------------------------------- restartable state ----
  bool restartable() const { return opts_.restartable && opts_.memory == MemoryStrategy::Direct; }

  // A compiler barrier that may read and write the state and all memory:
  // no guest access or state store moves across it. No instructions.
  // A guest load whose value is dead must still happen: under restartable
  // direct access the host fault it raises is the guest's fault (a load
  // that only probes memory, or whose result a later instruction
  // overwrites; LLVM would delete it). Each load's value is folded into
  // `load_sink_` (an xor), which an empty asm takes before every sync point,
  // side exit and block end: the loads cannot be deleted, yet they may still
  // move within their span, whose re-run from the last sync point finds the
  // faulting one in order. Cost, `recursion` at scale 3000: 1.13 -> 1.18 s;
  // an asm per load pinned every load in place instead: 1.13 -> 1.25 s.
  // Under fast_isel the xor goes to a volatile stack slot instead (FastISel
  // rejects an asm with operands); -O0 keeps every store.
  void sink_load(Value* v) {
    llvm::Type* t = v->getType();
    if (t->isVectorTy()) {
      v = b_.CreateExtractElement(b_.CreateBitCast(v, v128_), uint64_t{0});
    } else if (t->isFloatingPointTy()) {
      v = b_.CreateBitCast(v, b_.getIntNTy(t->getPrimitiveSizeInBits().getFixedValue()));
    }
    v = b_.CreateZExtOrTrunc(v, i64_);
    load_sink_ = load_sink_ ? b_.CreateXor(load_sink_, v) : v;
  }
  // `reset`: on the block's straight path (not a side exit's), the loads so
  // far are accounted for.
  void consume_loads(bool reset) {
    if (!load_sink_) return;
    if (sink_slot_) {
      b_.CreateAlignedStore(load_sink_, sink_slot_, llvm::Align(8), true);
    } else {
      auto* fty = llvm::FunctionType::get(b_.getVoidTy(), {i64_}, false);
      b_.CreateCall(fty, llvm::InlineAsm::get(fty, "", "r", true), {load_sink_});
    }
    if (reset) load_sink_ = nullptr;
  }
  // The stored value through an asm that returns its operand: LLVM can no
  // longer tell that a store writes back the value just loaded from the
  // same address and drop it as a no-op, so under restartable direct access
  // it still faults on a page that is readable but not writable. (Not a
  // side effect: an unused result is deleted like any value.) Types the
  // host's registers take whole only; others (i128) keep the value as is.
  // Cost, `recursion` at scale 3000, 5 rounds alternating: 1.30 -> 1.34 s.
  Value* opaque(Value* v) {
    if (opts_.fast_isel) return v;
    llvm::Type* t = v->getType();
    const char* constraint = nullptr;
    if (t->isIntegerTy(8) || t->isIntegerTy(16) || t->isIntegerTy(32) || t->isIntegerTy(64)) constraint = "=r,0";
    if (t->isFloatTy() || t->isDoubleTy() || t == v128_) constraint = "=x,0";
    if (!constraint) return v;
    auto* fty = llvm::FunctionType::get(t, {t}, false);
    return b_.CreateCall(fty, llvm::InlineAsm::get(fty, "", constraint, false), {v});
  }
  void barrier() {
    if (opts_.fast_isel) return;
    auto* fty = llvm::FunctionType::get(b_.getVoidTy(), {ptr_}, false);
    b_.CreateCall(fty, llvm::InlineAsm::get(fty, "", "r,~{memory}", true), {state_});
  }
  // Stores the unsynced registers and `rip` (the next instruction), between
  // barriers. `consume`: the point is on the block's straight path (not on
  // one of several edges), so the registers count as synced afterwards.
  // `skip` (a mask of registers, consuming points only): flags the block
  // sets again before anything observes them (flags_set_before_observed);
  // they stay unsynced.
  void emit_sync(Value* rip, bool consume, uint64_t skip = 0) {
    consume_loads(consume);
    barrier();
    for (size_t i = 0; i < unsynced_.size(); ++i) {
      if (!unsynced_[i] || (skip >> i & 1)) continue;
      store_state_reg(b_, core::kX86Regs[i], current(i));
      if (consume && !region_) regs_[i].dirty = false;
    }
    b_.CreateAlignedStore(rip, rip_ptr(), llvm::Align(8));
    barrier();
    if (consume) {
      for (size_t i = 0; i < unsynced_.size(); ++i) unsynced_[i] = unsynced_[i] && (skip >> i & 1);
      sync_pending_ = false;
      span_read_ = false;
    }
  }
  // Regions: for each member, the registers that may be unsynced when an
  // internal edge enters it (entry from outside: none, the state is whole).
  // Mirrors the sync points above: a due sync at an instruction boundary or
  // on an internal edge stores everything; a helper call stores everything.
  // Also whether the span an internal edge continues may have read memory
  // (`entry_span_read_`; false: synced on every such edge, or nothing read
  // since), which decides whether the member's first stores need a sync.
  void compute_entry_unsynced(std::span<const ir::IRBlock> blocks) {
    entry_unsynced_.assign(blocks.size(), RegSet{});
    entry_span_read_.assign(blocks.size(), false);
    bool changed = true;
    auto merge = [&](size_t m, const RegSet& in, bool read) {
      for (size_t r = 0; r < in.size(); ++r)
        if (in[r] && !entry_unsynced_[m][r]) entry_unsynced_[m][r] = changed = true;
      if (read && !entry_span_read_[m]) entry_span_read_[m] = changed = true;
    };
    std::vector<std::vector<bool>> reads_of(blocks.size());
    std::vector<std::vector<uint64_t>> flags_reset_of(blocks.size());
    for (size_t i = 0; i < blocks.size(); ++i) {
      reads_of[i] = insns_reading_memory(blocks[i]);
      flags_reset_of[i] = flags_set_before_observed(blocks[i]);
    }
    while (changed) {
      changed = false;
      for (size_t i = 0; i < blocks.size(); ++i) {
        RegSet s = entry_unsynced_[i];
        bool pending = false, span_read = entry_span_read_[i];
        auto edge = [&](uint64_t pc) {
          if (auto it = region_index_.find(pc); it != region_index_.end())
            merge(it->second, pending ? RegSet{} : s, !pending && span_read);
        };
        auto to_all = [&](const std::vector<size_t>* only) {
          for (size_t m = 0; m < blocks.size(); ++m)
            if (!only || std::binary_search(only->begin(), only->end(), m))
              merge(m, pending ? RegSet{} : s, !pending && span_read);
        };
        const std::vector<bool>& reads = reads_of[i];
        const std::vector<uint64_t>& flags_reset = flags_reset_of[i];
        std::vector<bool> store_syncs = stores_needing_sync(blocks[i], entry_span_read_[i]);
        for (size_t k = 0; k < blocks[i].ops.size(); ++k) {
          const ir::Op& op = blocks[i].ops[k];
          switch (op.opcode) {
            case Opcode::InsnStart:
              if (pending && (reads[k] || span_read)) {
                for (size_t r = 0; r < s.size(); ++r) s[r] = s[r] && (flags_reset[k] >> r & 1);
                pending = false;
                span_read = false;
              }
              span_read = span_read || reads[k];
              break;
            case Opcode::SetReg: s[op.aux] = true; break;
            case Opcode::CallHelper: s = RegSet{}; pending = true; break;
            case Opcode::Store: pending = pending || store_syncs[k]; break;
            case Opcode::AtomicRmw: case Opcode::AtomicCmpxchg: pending = true; break;
            case Opcode::ExitIf: edge(op.imm); break;
            default: break;
          }
        }
        const ir::Terminator& t = blocks[i].term;
        switch (t.kind) {
          case TermKind::Jump: edge(t.target.value()); break;
          case TermKind::Branch: edge(t.target.value()); edge(t.fallthrough.value()); break;
          case TermKind::Call:
            if (t.value == ir::kNoValue) edge(t.target.value());
            else if (opts_.indirect_members) to_all(nullptr);
            break;
          case TermKind::IndirectJump:
            if (opts_.indirect_members) to_all(nullptr);
            break;
          case TermKind::Ret:
            if (opts_.indirect_members) to_all(&return_sites_);
            break;
          default: break;
        }
      }
    }
  }

  // ----------------------------------------------------------- exits ----
  Value* rip_ptr() { return state_field(core::reg_info(core::X86Reg::Rip).offset); }

  // Leaves the function: registers and rip to the state, default rounding, return.
  void emit_return(Value* rip, uint64_t code) {
    if (region_) {
      restore_nearest_for_exit();
      return leave_region(rip, code);
    }
    store_dirty();
    b_.CreateAlignedStore(rip, rip_ptr(), llvm::Align(8));
    restore_nearest_for_exit();
    b_.CreateRet(c64(code));
  }
  Value* divide(Opcode opc, Value* a, Value* d) {
    switch (opc) {
      case Opcode::DivU: return b_.CreateUDiv(a, d);
      case Opcode::DivS: return b_.CreateSDiv(a, d);
      case Opcode::RemU: return b_.CreateURem(a, d);
      default: return b_.CreateSRem(a, d);
    }
  }
  // A 128-bit division (the lifter's 64-bit div and idiv, three per idiv):
  // one host 64-bit division when both operands fit 64 bits, as they mostly
  // do, and libgcc's 128-bit routine (__divti3 and co., ten times slower)
  // otherwise. The caller has excluded a zero divisor and the overflowing
  // MIN / -1 at 128 bits; the 64-bit MIN / -1, whose quotient does not fit
  // 64 bits, takes the wide path.
  Value* wide_divide(Opcode opc, Value* a, Value* d) {
    bool sgn = opc == Opcode::DivS || opc == Opcode::RemS;
    llvm::Type* wide = a->getType();
    Value* a64 = b_.CreateTrunc(a, i64_);
    Value* d64 = b_.CreateTrunc(d, i64_);
    auto widen = [&](Value* v) { return sgn ? b_.CreateSExt(v, wide) : b_.CreateZExt(v, wide); };
    Value* fits = b_.CreateAnd(b_.CreateICmpEQ(widen(a64), a), b_.CreateICmpEQ(widen(d64), d));
    if (sgn)
      fits = b_.CreateAnd(fits, b_.CreateNot(b_.CreateAnd(b_.CreateICmpEQ(a64, c64(uint64_t{1} << 63)),
                                                          b_.CreateICmpEQ(d64, c64(~uint64_t{0})))));
    auto* narrow_bb = llvm::BasicBlock::Create(ctx_, "div_narrow", fn_);
    auto* wide_bb = llvm::BasicBlock::Create(ctx_, "div_wide", fn_);
    auto* join = llvm::BasicBlock::Create(ctx_, "div_join", fn_);
    b_.CreateCondBr(fits, narrow_bb, wide_bb, llvm::MDBuilder(ctx_).createLikelyBranchWeights());
    b_.SetInsertPoint(narrow_bb);
    Value* n = widen(divide(opc, a64, d64));
    b_.CreateBr(join);
    b_.SetInsertPoint(wide_bb);
    Value* w = divide(opc, a, d);
    b_.CreateBr(join);
    b_.SetInsertPoint(join);
    auto* phi = b_.CreatePHI(wide, 2, "quot");
    phi->addIncoming(n, narrow_bb);
    phi->addIncoming(w, wide_bb);
    return phi;
  }
  // A run-time trap at the current instruction when `cond` holds.
  void side_exit(Value* cond, uint64_t code, const char* name) {
    auto* exit_bb = llvm::BasicBlock::Create(ctx_, name, fn_);
    auto* cont = llvm::BasicBlock::Create(ctx_, "cont", fn_);
    b_.CreateCondBr(cond, exit_bb, cont, llvm::MDBuilder(ctx_).createUnlikelyBranchWeights());
    b_.SetInsertPoint(exit_bb);
    consume_loads(false);
    emit_return(c64(insn_pc_.value()), code);
    b_.SetInsertPoint(cont);
  }
  // Regions: branches to `next` unless the owner has set mem->exit_request
  // (its translations changed), in which case the region is left for `rip`.
  // The insertion point is left in the leaving block.
  void continue_unless_exit_requested(llvm::BasicBlock* next, Value* rip, uint64_t code) {
    Value* req = b_.CreateAlignedLoad(i32_, mem_field(kMemCtxExitRequest), llvm::Align(4), "exit_req");
    auto* leave = llvm::BasicBlock::Create(ctx_, "exit_requested", fn_);
    b_.CreateCondBr(b_.CreateIsNotNull(req), leave, next, llvm::MDBuilder(ctx_).createUnlikelyBranchWeights());
    b_.SetInsertPoint(leave);
    leave_region(rip, code);
  }
  // Ends the current basic block by running the unit `callee` next: a
  // `musttail` call, or under chain_by_return its entry handed back to the
  // caller (run_unit).
  void continue_with(Value* callee) {
    if (opts_.chain_by_return) {
      b_.CreateRet(b_.CreateOr(b_.CreatePtrToInt(callee, i64_), c64(kExitContinue)));
      return;
    }
    auto* call = b_.CreateCall(fn_->getFunctionType(), callee, {state_, mem_});
    call->setTailCallKind(llvm::CallInst::TCK_MustTail);
    b_.CreateRet(call);
  }
  // A direct exit to a static guest pc: an internal edge of the region, a
  // chain slot, or a plain return.
  void direct_exit(core::GuestAddr target, uint64_t code) {
    if (auto it = region_index_.find(target.value()); it != region_index_.end()) {
      if (sync_pending_) emit_sync(c64(target.value()), false);
      spill_to_slots();
      // A block that reads rip sees its own start, as after any exit.
      if (auto* rip_slot = slots_[static_cast<size_t>(core::X86Reg::Rip)]) b_.CreateStore(c64(target.value()), rip_slot);
      restore_nearest_for_exit();
      if (it->second > cur_block_) {  // a forward edge: no cycle closes here
        b_.CreateBr(block_entries_[it->second]);
        return;
      }
      // A back edge: the owner may ask running code to come back (its
      // translations changed).
      continue_unless_exit_requested(block_entries_[it->second], c64(target.value()), code);
      return;
    }
    if (!opts_.chain_exits) return emit_return(c64(target.value()), code);
    Value* slot = nullptr;
    if (chain_slots_.size() < opts_.chain_slot_capacity && opts_.chain_slot_storage) {
      void** word = opts_.chain_slot_storage + chain_slots_.size();
      slot = b_.CreateIntToPtr(c64(reinterpret_cast<uint64_t>(word)), ptr_);
      chain_slots_.push_back(ChainSlot{"", target, word});
    } else {
      std::string name = fmt::format("{}.chain{}", opts_.function_name, chain_slots_.size());
      auto* global = llvm::cast<llvm::GlobalVariable>(mod_.getOrInsertGlobal(name, ptr_));
      global->setInitializer(llvm::ConstantPointerNull::get(ptr_));
      global->setAlignment(llvm::Align(8));
      global->setDSOLocal(true);
      chain_slots_.push_back(ChainSlot{name, target});
      slot = global;
    }
    store_dirty();
    b_.CreateAlignedStore(c64(target.value()), rip_ptr(), llvm::Align(8));
    restore_nearest_for_exit();
    Value* succ = b_.CreateAlignedLoad(ptr_, slot, llvm::Align(8), "succ");
    auto* call_bb = llvm::BasicBlock::Create(ctx_, "chain", fn_);
    auto* ret_bb = llvm::BasicBlock::Create(ctx_, "unchained", fn_);
    b_.CreateCondBr(b_.CreateIsNotNull(succ), call_bb, ret_bb);
    b_.SetInsertPoint(call_bb);
    continue_with(succ);
    b_.SetInsertPoint(ret_bb);
    b_.CreateRet(c64(code));
  }

  // Regions: an indirect jump, call or return whose target is a member of
  // the region continues there inside the function, as a back edge would
  // (the slots carry the registers; the owner's exit request, checked once
  // before the switch, leaves the region instead). A return is compared
  // with the return sites only, anything else with every member. Other
  // targets fall through to the caller's exit code.
  void enter_member_if_target(Value* target, uint64_t code, bool is_return) {
    std::vector<size_t> all;
    if (!is_return)
      for (size_t i = 0; i < block_entries_.size(); ++i) all.push_back(i);
    const std::vector<size_t>& members = is_return ? return_sites_ : all;
    if (members.empty()) return;
    if (sync_pending_) emit_sync(target, false);
    spill_to_slots();
    restore_nearest_for_exit();
    auto* dispatch = llvm::BasicBlock::Create(ctx_, "indirect_dispatch", fn_);
    continue_unless_exit_requested(dispatch, target, code);
    b_.SetInsertPoint(dispatch);
    auto* outside = llvm::BasicBlock::Create(ctx_, "indirect_outside", fn_);
    auto* sw = b_.CreateSwitch(target, outside, static_cast<unsigned>(members.size()));
    for (size_t i : members) {
      uint64_t pc = block_pcs_[i];
      auto* rip_slot = slots_[static_cast<size_t>(core::X86Reg::Rip)];
      if (!rip_slot) {
        sw->addCase(b_.getInt64(pc), block_entries_[i]);
        continue;
      }
      auto* in = llvm::BasicBlock::Create(ctx_, "indirect_inside", fn_);
      sw->addCase(b_.getInt64(pc), in);
      b_.SetInsertPoint(in);
      b_.CreateStore(c64(pc), rip_slot);  // a block that reads rip sees its own start
      b_.CreateBr(block_entries_[i]);
    }
    b_.SetInsertPoint(outside);
  }

  // An exit to a pc known only at run time: with inline_jump_cache, a hit in
  // the engine's jump cache is tail-called, anything else returns.
  void indirect_exit(Value* target, uint64_t code, bool is_return) {
    if (region_ && opts_.indirect_members) enter_member_if_target(target, code, is_return);
    if (!opts_.inline_jump_cache) return emit_return(target, code);
    store_dirty();
    b_.CreateAlignedStore(target, rip_ptr(), llvm::Align(8));
    restore_nearest_for_exit();
    Value* table = b_.CreateAlignedLoad(ptr_, mem_field(kMemCtxJumpCache), llvm::Align(8), "jcache");
    Value* mask = b_.CreateAlignedLoad(i64_, mem_field(kMemCtxJumpCacheMask), llvm::Align(8), "jmask");
    Value* idx = b_.CreateAnd(b_.CreateXor(target, b_.CreateLShr(target, 12)), mask);
    Value* entry = b_.CreateGEP(i8_, table, b_.CreateShl(idx, 4));
    Value* pc = b_.CreateAlignedLoad(i64_, entry, llvm::Align(8), "jpc");
    Value* fn = b_.CreateAlignedLoad(ptr_, b_.CreateConstInBoundsGEP1_64(i8_, entry, 8), llvm::Align(8), "jfn");
    Value* hit = b_.CreateAnd(b_.CreateICmpEQ(pc, target), b_.CreateIsNotNull(fn), "jhit");
    auto* call_bb = llvm::BasicBlock::Create(ctx_, "jcache_hit", fn_);
    auto* ret_bb = llvm::BasicBlock::Create(ctx_, "jcache_miss", fn_);
    b_.CreateCondBr(hit, call_bb, ret_bb);
    b_.SetInsertPoint(call_bb);
    continue_with(fn);
    b_.SetInsertPoint(ret_bb);
    b_.CreateRet(c64(code));
  }

  // ---------------------------------------------------------- memory ----
  static uint64_t fault_code() { return encode_exit(TermKind::Trap, ir::TrapReason::MemoryFault); }

  // Host pointer for a direct access.
  Value* direct_addr(Value* addr) {
    if (opts_.direct_guard > 16) {
      // addr = root + d through adds and subtracts of constants.
      const auto bound = static_cast<int64_t>(std::min<uint64_t>(opts_.direct_guard - 16, uint64_t{1} << 40));
      Value* root = addr;
      int64_t d = 0;
      for (int depth = 0; depth < 16; ++depth) {
        auto* bo = llvm::dyn_cast<llvm::BinaryOperator>(root);
        if (!bo || !bo->getType()->isIntegerTy(64)) break;
        bool add = bo->getOpcode() == llvm::Instruction::Add, sub = bo->getOpcode() == llvm::Instruction::Sub;
        auto* c1 = llvm::dyn_cast<llvm::ConstantInt>(bo->getOperand(1));
        auto* c0 = add ? llvm::dyn_cast<llvm::ConstantInt>(bo->getOperand(0)) : nullptr;
        if (!(add || sub) || !(c1 || c0)) break;
        int64_t k = (c1 ? c1 : c0)->getSExtValue();
        if (k <= -bound || k >= bound) break;
        int64_t next = sub ? d - k : d + k;
        if (next <= -bound || next >= bound) break;
        d = next;
        root = bo->getOperand(c1 ? 0 : 1);
      }
      if (root != addr)
        return b_.CreateGEP(i8_, b_.CreateGEP(i8_, guest_base_, b_.CreateAnd(root, region_mask_)), c64(d));
    }
    return b_.CreateGEP(i8_, guest_base_, b_.CreateAnd(addr, region_mask_));
  }

  // Tags a load or store with its alias scope (SoftMmu only).
  template <typename I>
  I* scoped(I* inst, bool guest) {
    if (guest_scope_ != nullptr) {
      inst->setMetadata(llvm::LLVMContext::MD_alias_scope, guest ? guest_scope_ : tlb_scope_);
      inst->setMetadata(llvm::LLVMContext::MD_noalias, guest ? tlb_scope_ : guest_scope_);
    }
    return inst;
  }
  Value* tlb_load(llvm::Type* t, Value* base, size_t offset) {
    return scoped(b_.CreateLoad(t, b_.CreateConstInBoundsGEP1_64(i8_, base, offset)), false);
  }

  // SoftMmu: emits the TLB check; returns the hit condition and the host
  // pointer valid when it holds. `comparator_off` picks read or write.
  std::pair<Value*, Value*> tlb_lookup(Value* addr, uint32_t size, size_t comparator_off) {
    Value* index_mask = tlb_load(i64_, tlb_, core::kTlbFastIndexMaskOffset);
    Value* table = tlb_load(ptr_, tlb_, core::kTlbFastTableOffset);
    Value* tag = tlb_load(i64_, tlb_, core::kTlbFastTagOffset);
    Value* idx = b_.CreateAnd(b_.CreateLShr(addr, core::kTlbIndexShift), index_mask);
    Value* entry = b_.CreateGEP(i8_, table, idx);
    Value* last = b_.CreateAdd(addr, c64(size - 1));
    Value* want = b_.CreateOr(b_.CreateAnd(last, c64(core::kTlbPageMask)), tag);
    Value* have = tlb_load(i64_, entry, comparator_off);
    Value* hit = b_.CreateICmpEQ(have, want, "tlb_hit");
    Value* addend = tlb_load(i64_, entry, core::kTlbEntryAddendOffset);
    Value* host = b_.CreateIntToPtr(b_.CreateAdd(addr, addend), ptr_);
    return {hit, host};
  }

  // Calls a slow path with the default rounding mode installed.
  Value* call_slow(size_t field, llvm::FunctionType* fty, llvm::ArrayRef<Value*> args) {
    Value* fnp = b_.CreateLoad(ptr_, mem_field(field));
    if (cur_mode_ != c32(kNearest)) b_.CreateIntrinsic(llvm::Intrinsic::set_rounding, {}, {c32(kNearest)});
    Value* r = b_.CreateCall(fty, fnp, args);
    if (cur_mode_ != c32(kNearest)) b_.CreateIntrinsic(llvm::Intrinsic::set_rounding, {}, {cur_mode_});
    return r;
  }

  // The group's check, at its first member: one TLB lookup for [lo, hi).
  void open_group(AccessGroup& g) {
    if (g.hit) return;
    Value* lo_addr = b_.CreateAdd(vals_[g.root], c64(static_cast<uint64_t>(g.lo)));
    auto [hit, host] = tlb_lookup(lo_addr, static_cast<uint32_t>(g.hi - g.lo),
                                  g.write ? core::kTlbEntryWriteOffset : core::kTlbEntryReadOffset);
    g.hit = hit;
    g.host_lo = host;
  }
  // The host address of the current grouped access when its group hit.
  Value* group_host() {
    return b_.CreateConstInBoundsGEP1_64(i8_, cur_group_->host_lo, static_cast<uint64_t>(cur_offset_ - cur_group_->lo));
  }

  // The current access of a group (cur_group_): through the group's addend
  // when the group's check hit, else through its own check and slow path.
  // A load when `store_value` is null (returns the value), else a store.
  Value* grouped_access(Value* addr, llvm::Type* t, Value* store_value, uint32_t bytes) {
    AccessGroup* g = cur_group_;
    open_group(*g);
    const bool load = store_value == nullptr;
    auto* grouped = llvm::BasicBlock::Create(ctx_, load ? "ld_grouped" : "st_grouped", fn_);
    auto* own = llvm::BasicBlock::Create(ctx_, load ? "ld_own" : "st_own", fn_);
    auto* done = llvm::BasicBlock::Create(ctx_, load ? "ld_done" : "st_done", fn_);
    b_.CreateCondBr(g->hit, grouped, own, llvm::MDBuilder(ctx_).createLikelyBranchWeights());
    b_.SetInsertPoint(grouped);
    Value* gv = nullptr;
    if (load) gv = scoped(b_.CreateAlignedLoad(t, group_host(), llvm::Align(1)), true);
    else scoped(b_.CreateAlignedStore(store_value, group_host(), llvm::Align(1)), true);
    b_.CreateBr(done);
    b_.SetInsertPoint(own);
    cur_group_ = nullptr;
    Value* ov = nullptr;
    if (load) ov = emit_load(addr, t, bytes);
    else emit_store(addr, store_value, bytes);
    cur_group_ = g;
    auto* own_end = b_.GetInsertBlock();
    b_.CreateBr(done);
    b_.SetInsertPoint(done);
    if (!load) return nullptr;
    auto* phi = b_.CreatePHI(t, 2);
    phi->addIncoming(gv, grouped);
    phi->addIncoming(ov, own_end);
    return phi;
  }

  Value* emit_load(Value* addr, llvm::Type* t, uint32_t bytes) {
    if (opts_.memory == MemoryStrategy::Direct) {
      Value* v = b_.CreateAlignedLoad(t, direct_addr(addr), llvm::Align(1));
      if (restartable()) sink_load(v);
      return v;
    }
    if (cur_group_) return grouped_access(addr, t, nullptr, bytes);
    auto [hit, host] = tlb_lookup(addr, bytes, core::kTlbEntryReadOffset);
    auto* fast = llvm::BasicBlock::Create(ctx_, "ld_fast", fn_);
    auto* slow = llvm::BasicBlock::Create(ctx_, "ld_slow", fn_);
    auto* join = llvm::BasicBlock::Create(ctx_, "ld_join", fn_);
    b_.CreateCondBr(hit, fast, slow, llvm::MDBuilder(ctx_).createLikelyBranchWeights());
    b_.SetInsertPoint(fast);
    Value* fv = scoped(b_.CreateAlignedLoad(t, host, llvm::Align(1)), true);
    b_.CreateBr(join);
    b_.SetInsertPoint(slow);
    auto* fty = llvm::FunctionType::get(i32_, {ptr_, i64_, i64_, ptr_}, false);
    Value* st = call_slow(kMemCtxLoadSlow, fty, {mem_, addr, c64(bytes), slow_buf_});
    side_exit(b_.CreateICmpNE(st, c32(0)), fault_code(), "ld_fault");
    Value* sv = b_.CreateAlignedLoad(t, slow_buf_, llvm::Align(1));
    auto* slow_end = b_.GetInsertBlock();
    b_.CreateBr(join);
    b_.SetInsertPoint(join);
    auto* phi = b_.CreatePHI(t, 2);
    phi->addIncoming(fv, fast);
    phi->addIncoming(sv, slow_end);
    return phi;
  }

  void emit_store(Value* addr, Value* v, uint32_t bytes) {
    if (opts_.memory == MemoryStrategy::Direct) {
      b_.CreateAlignedStore(restartable() ? opaque(v) : v, direct_addr(addr), llvm::Align(1));
      return;
    }
    if (cur_group_) {
      grouped_access(addr, v->getType(), v, bytes);
      return;
    }
    auto [hit, host] = tlb_lookup(addr, bytes, core::kTlbEntryWriteOffset);
    auto* fast = llvm::BasicBlock::Create(ctx_, "st_fast", fn_);
    auto* slow = llvm::BasicBlock::Create(ctx_, "st_slow", fn_);
    auto* join = llvm::BasicBlock::Create(ctx_, "st_join", fn_);
    b_.CreateCondBr(hit, fast, slow, llvm::MDBuilder(ctx_).createLikelyBranchWeights());
    b_.SetInsertPoint(fast);
    scoped(b_.CreateAlignedStore(v, host, llvm::Align(1)), true);
    b_.CreateBr(join);
    b_.SetInsertPoint(slow);
    b_.CreateAlignedStore(v, slow_buf_, llvm::Align(1));
    auto* fty = llvm::FunctionType::get(i32_, {ptr_, i64_, i64_, ptr_}, false);
    Value* st = call_slow(kMemCtxStoreSlow, fty, {mem_, addr, c64(bytes), slow_buf_});
    side_exit(b_.CreateICmpNE(st, c32(0)), fault_code(), "st_fault");
    b_.CreateBr(join);
    b_.SetInsertPoint(join);
  }

  Value* emit_atomic(const ir::Op& op, Value* addr) {
    uint32_t bytes = ir::type_bytes(op.type);
    if (opts_.memory == MemoryStrategy::Direct) return atomic_on_host(op, direct_addr(addr));
    auto [hit, host] = tlb_lookup(addr, bytes, core::kTlbEntryWriteOffset);
    auto* fast = llvm::BasicBlock::Create(ctx_, "at_fast", fn_);
    auto* slow = llvm::BasicBlock::Create(ctx_, "at_slow", fn_);
    auto* join = llvm::BasicBlock::Create(ctx_, "at_join", fn_);
    b_.CreateCondBr(hit, fast, slow, llvm::MDBuilder(ctx_).createLikelyBranchWeights());
    b_.SetInsertPoint(fast);
    Value* fv = atomic_on_host(op, host);
    auto* fast_end = b_.GetInsertBlock();
    b_.CreateBr(join);
    b_.SetInsertPoint(slow);
    b_.CreateAlignedStore(arg(op, 1), operand_buf_, llvm::Align(16));
    uint32_t kind = static_cast<uint32_t>(op.mod);
    if (op.opcode == Opcode::AtomicCmpxchg) {
      b_.CreateAlignedStore(arg(op, 2), b_.CreateConstInBoundsGEP1_64(i8_, operand_buf_, 16), llvm::Align(16));
      kind = kAtomicSlowCmpxchg;
    }
    auto* fty = llvm::FunctionType::get(i32_, {ptr_, i64_, i64_, i32_, ptr_, ptr_}, false);
    Value* st = call_slow(kMemCtxAtomicSlow, fty, {mem_, addr, c64(bytes), c32(kind), operand_buf_, slow_buf_});
    side_exit(b_.CreateICmpNE(st, c32(0)), fault_code(), "at_fault");
    Value* sv = b_.CreateAlignedLoad(ty(op.type), slow_buf_, llvm::Align(1));
    auto* slow_end = b_.GetInsertBlock();
    b_.CreateBr(join);
    b_.SetInsertPoint(join);
    auto* phi = b_.CreatePHI(ty(op.type), 2);
    phi->addIncoming(fv, fast_end);
    phi->addIncoming(sv, slow_end);
    return phi;
  }

  // Aligned accesses are real atomics; a misaligned one (legal on x86, a bus
  // error on other hosts) is done as a plain read-modify-write.
  Value* atomic_on_host(const ir::Op& op, Value* host) {
    uint32_t bytes = ir::type_bytes(op.type);
    llvm::Type* t = ty(op.type);
    Value* addr_bits = b_.CreatePtrToInt(host, i64_);
    Value* aligned = b_.CreateICmpEQ(b_.CreateAnd(addr_bits, c64(bytes - 1)), c64(0));
    auto* at_bb = llvm::BasicBlock::Create(ctx_, "atomic", fn_);
    auto* plain_bb = llvm::BasicBlock::Create(ctx_, "unaligned", fn_);
    auto* join = llvm::BasicBlock::Create(ctx_, "atomic_join", fn_);
    b_.CreateCondBr(aligned, at_bb, plain_bb, llvm::MDBuilder(ctx_).createLikelyBranchWeights());
    Value* a1 = arg(op, 1);
    Value* a2 = op.opcode == Opcode::AtomicCmpxchg ? arg(op, 2) : nullptr;

    b_.SetInsertPoint(at_bb);
    Value* old_atomic = nullptr;
    if (op.opcode == Opcode::AtomicCmpxchg) {
      auto* cx = b_.CreateAtomicCmpXchg(host, a1, a2, llvm::MaybeAlign(bytes), llvm::AtomicOrdering::SequentiallyConsistent,
                                        llvm::AtomicOrdering::SequentiallyConsistent);
      old_atomic = b_.CreateExtractValue(cx, 0);
    } else {
      old_atomic = b_.CreateAtomicRMW(rmw_kind(static_cast<ir::RmwOp>(op.mod)), host, a1, llvm::MaybeAlign(bytes),
                                      llvm::AtomicOrdering::SequentiallyConsistent);
    }
    b_.CreateBr(join);

    b_.SetInsertPoint(plain_bb);
    Value* old_plain = b_.CreateAlignedLoad(t, host, llvm::Align(1));
    Value* neu = nullptr;
    if (op.opcode == Opcode::AtomicCmpxchg) {
      neu = b_.CreateSelect(b_.CreateICmpEQ(old_plain, a1), a2, old_plain);
    } else {
      switch (static_cast<ir::RmwOp>(op.mod)) {
        case ir::RmwOp::Xchg: neu = a1; break;
        case ir::RmwOp::Add: neu = b_.CreateAdd(old_plain, a1); break;
        case ir::RmwOp::Sub: neu = b_.CreateSub(old_plain, a1); break;
        case ir::RmwOp::And: neu = b_.CreateAnd(old_plain, a1); break;
        case ir::RmwOp::Or: neu = b_.CreateOr(old_plain, a1); break;
        case ir::RmwOp::Xor: neu = b_.CreateXor(old_plain, a1); break;
      }
    }
    b_.CreateAlignedStore(neu, host, llvm::Align(1));
    b_.CreateBr(join);

    b_.SetInsertPoint(join);
    auto* phi = b_.CreatePHI(t, 2);
    phi->addIncoming(old_atomic, at_bb);
    phi->addIncoming(old_plain, plain_bb);
    return phi;
  }
  static llvm::AtomicRMWInst::BinOp rmw_kind(ir::RmwOp op) {
    switch (op) {
      case ir::RmwOp::Xchg: return llvm::AtomicRMWInst::Xchg;
      case ir::RmwOp::Add: return llvm::AtomicRMWInst::Add;
      case ir::RmwOp::Sub: return llvm::AtomicRMWInst::Sub;
      case ir::RmwOp::And: return llvm::AtomicRMWInst::And;
      case ir::RmwOp::Or: return llvm::AtomicRMWInst::Or;
      case ir::RmwOp::Xor: return llvm::AtomicRMWInst::Xor;
    }
    return llvm::AtomicRMWInst::Xchg;
  }

  // ----------------------------------------------------- integer ops ----
  Value* arg(const ir::Op& op, int i) { return vals_[op.args[i]]; }
  Type arg_type(const ir::Op& op, int i) { return types_[op.args[i]]; }

  Value* intrinsic(llvm::Intrinsic::ID id, llvm::ArrayRef<llvm::Type*> tys, llvm::ArrayRef<Value*> args) {
    return b_.CreateIntrinsic(id, tys, args);
  }

  // Integer arithmetic on a scalar iN or a vector of iN (lane-wise).
  Value* int_binary(Opcode opc, Value* a, Value* bv) {
    llvm::Type* t = a->getType();
    uint32_t bits = t->getScalarSizeInBits();
    auto wide = [&](uint32_t w) -> llvm::Type* {
      if (auto* vt = llvm::dyn_cast<llvm::FixedVectorType>(t)) return llvm::FixedVectorType::get(b_.getIntNTy(w), vt->getNumElements());
      return b_.getIntNTy(w);
    };
    switch (opc) {
      case Opcode::Add: return b_.CreateAdd(a, bv);
      case Opcode::Sub: return b_.CreateSub(a, bv);
      case Opcode::Mul: return b_.CreateMul(a, bv);
      case Opcode::MulHiU:
      case Opcode::MulHiS: {
        llvm::Type* wt = wide(bits * 2);
        bool s = opc == Opcode::MulHiS;
        Value* p = b_.CreateMul(s ? b_.CreateSExt(a, wt) : b_.CreateZExt(a, wt), s ? b_.CreateSExt(bv, wt) : b_.CreateZExt(bv, wt));
        return b_.CreateTrunc(b_.CreateLShr(p, splat_like(wt, bits)), t);
      }
      case Opcode::And: return b_.CreateAnd(a, bv);
      case Opcode::Or: return b_.CreateOr(a, bv);
      case Opcode::Xor: return b_.CreateXor(a, bv);
      case Opcode::Shl:
      case Opcode::LShr: {
        // Counts >= width give 0; LLVM's shift would be poison there, which the select discards.
        Value* big = b_.CreateICmpUGE(bv, splat_like(t, bits));
        Value* r = opc == Opcode::Shl ? b_.CreateShl(a, bv) : b_.CreateLShr(a, bv);
        return b_.CreateSelect(big, llvm::Constant::getNullValue(t), r);
      }
      case Opcode::AShr: {
        Value* top = splat_like(t, bits - 1);
        return b_.CreateAShr(a, b_.CreateSelect(b_.CreateICmpUGT(bv, top), top, bv));
      }
      case Opcode::Rotl: return intrinsic(llvm::Intrinsic::fshl, {t}, {a, a, bv});
      case Opcode::Rotr: return intrinsic(llvm::Intrinsic::fshr, {t}, {a, a, bv});
      case Opcode::SMin: return intrinsic(llvm::Intrinsic::smin, {t}, {a, bv});
      case Opcode::SMax: return intrinsic(llvm::Intrinsic::smax, {t}, {a, bv});
      case Opcode::UMin: return intrinsic(llvm::Intrinsic::umin, {t}, {a, bv});
      case Opcode::UMax: return intrinsic(llvm::Intrinsic::umax, {t}, {a, bv});
      case Opcode::AddSatS: return intrinsic(llvm::Intrinsic::sadd_sat, {t}, {a, bv});
      case Opcode::AddSatU: return intrinsic(llvm::Intrinsic::uadd_sat, {t}, {a, bv});
      case Opcode::SubSatS: return intrinsic(llvm::Intrinsic::ssub_sat, {t}, {a, bv});
      case Opcode::SubSatU: return intrinsic(llvm::Intrinsic::usub_sat, {t}, {a, bv});
      case Opcode::AvgU: {
        if (bits == 1) return b_.CreateOr(a, bv);
        Value* one = splat_like(t, 1);
        return b_.CreateAdd(b_.CreateAdd(b_.CreateLShr(a, one), b_.CreateLShr(bv, one)), b_.CreateAnd(b_.CreateOr(a, bv), one));
      }
      default: return nullptr;
    }
  }

  Value* int_unary(Opcode opc, Value* a) {
    llvm::Type* t = a->getType();
    switch (opc) {
      case Opcode::Not: return b_.CreateNot(a);
      case Opcode::Neg: return b_.CreateNeg(a);
      case Opcode::Abs: return intrinsic(llvm::Intrinsic::abs, {t}, {a, b_.getFalse()});
      case Opcode::Ctz: return intrinsic(llvm::Intrinsic::cttz, {t}, {a, b_.getFalse()});
      case Opcode::Clz: return intrinsic(llvm::Intrinsic::ctlz, {t}, {a, b_.getFalse()});
      case Opcode::Popcount: return intrinsic(llvm::Intrinsic::ctpop, {t}, {a});
      case Opcode::Bswap: return intrinsic(llvm::Intrinsic::bswap, {t}, {a});
      default: return nullptr;
    }
  }

  // Selects between i1 values become logic, which FastISel selects (it
  // gives up on `select i1`); other types stay selects.
  Value* select(Value* c, Value* a, Value* bv) {
    if (a->getType()->isIntegerTy(1)) return b_.CreateOr(b_.CreateAnd(c, a), b_.CreateAnd(b_.CreateNot(c), bv));
    return b_.CreateSelect(c, a, bv);
  }

  // Even parity: ctpop on x86-64, where it is one popcnt (or a short
  // sequence without POPCNT); elsewhere, and for FastISel (which rejects
  // ctpop: a SelectionDAG run per block that has one), by folding the bits
  // with shifts and xors.
  Value* parity(Value* a) {
    llvm::Type* t = a->getType();
    if (opts_.target == LoweringTarget::X86_64 && !opts_.fast_isel) {
      Value* n = b_.CreateUnaryIntrinsic(llvm::Intrinsic::ctpop, a);
      return b_.CreateICmpEQ(b_.CreateAnd(n, llvm::ConstantInt::get(t, 1)), llvm::ConstantInt::get(t, 0));
    }
    uint32_t bits = t->getIntegerBitWidth();
    Value* x = a;
    // Fold from the top half down: afterwards bit 0 holds the xor of all bits.
    for (uint32_t sh = bits / 2; sh >= 1; sh /= 2) x = b_.CreateXor(x, b_.CreateLShr(x, sh));
    return b_.CreateICmpEQ(b_.CreateAnd(x, llvm::ConstantInt::get(t, 1)), llvm::ConstantInt::get(t, 0));
  }

  Value* int_compare(ir::CmpPred p, Value* a, Value* bv) {
    using P = llvm::CmpInst::Predicate;
    static constexpr P kPreds[] = {P::ICMP_EQ,  P::ICMP_NE,  P::ICMP_SLT, P::ICMP_SLE, P::ICMP_SGT,
                                   P::ICMP_SGE, P::ICMP_ULT, P::ICMP_ULE, P::ICMP_UGT, P::ICMP_UGE};
    return b_.CreateICmp(kPreds[static_cast<int>(p)], a, bv);
  }

  // A carry-in that is the constant 0 (add, sub, cmp: nearly every use)
  // gets the plain form: Tier::Fast code sees no IR pass to fold it away.
  Value* carry_op(Opcode opc, Value* a, Value* bv, Value* c) {
    llvm::Type* t = a->getType();
    auto* known = llvm::dyn_cast<llvm::ConstantInt>(c);
    bool no_carry = known && known->isZero();
    Value* cz = no_carry ? nullptr : b_.CreateZExt(c, t);
    switch (opc) {
      case Opcode::AddCarry: {
        Value* s1 = b_.CreateAdd(a, bv);
        Value* c1 = b_.CreateICmpULT(s1, a);
        if (no_carry) return c1;
        Value* s2 = b_.CreateAdd(s1, cz);
        return b_.CreateOr(c1, b_.CreateICmpULT(s2, s1));
      }
      case Opcode::AddOverflow: {
        Value* s = b_.CreateAdd(a, bv);
        if (!no_carry) s = b_.CreateAdd(s, cz);
        return b_.CreateICmpSLT(b_.CreateAnd(b_.CreateXor(a, s), b_.CreateXor(bv, s)), llvm::Constant::getNullValue(t));
      }
      case Opcode::SubBorrow:
        if (known) return known->isZero() ? b_.CreateICmpULT(a, bv) : b_.CreateICmpULE(a, bv);
        return select(c, b_.CreateICmpULE(a, bv), b_.CreateICmpULT(a, bv));
      case Opcode::SubOverflow: {
        Value* s = b_.CreateSub(a, bv);
        if (!no_carry) s = b_.CreateSub(s, cz);
        return b_.CreateICmpSLT(b_.CreateAnd(b_.CreateXor(a, bv), b_.CreateXor(a, s)), llvm::Constant::getNullValue(t));
      }
      default: return nullptr;
    }
  }

  // ------------------------------------------------------- float ops ----
  // Float bit-pattern helpers (scalar or vector of f32/f64, as integers).
  struct FloatConsts {
    uint64_t sign, abs_mask, inf, quiet, default_nan;
  };
  static FloatConsts fconsts(uint32_t bits) {
    if (bits == 32) return {0x80000000u, 0x7fffffffu, 0x7f800000u, 0x00400000u, 0xffc00000u};
    return {0x8000000000000000ull, 0x7fffffffffffffffull, 0x7ff0000000000000ull, 0x0008000000000000ull,
            0xfff8000000000000ull};
  }
  Value* is_nan_bits(Value* xi) {
    auto fc = fconsts(xi->getType()->getScalarSizeInBits());
    llvm::Type* it = xi->getType();
    return b_.CreateICmpUGT(b_.CreateAnd(xi, splat_like(it, fc.abs_mask)), splat_like(it, fc.inf));
  }
  Value* quiet_bits(Value* xi) {
    auto fc = fconsts(xi->getType()->getScalarSizeInBits());
    return b_.CreateOr(xi, splat_like(xi->getType(), fc.quiet));
  }
  Value* to_bits(Value* f) { return b_.CreateBitCast(f, int_like(f->getType())); }

  // x86 NaN result rules for a two-operand arithmetic op with result r.
  Value* nan_fixup2(Value* a, Value* bv, Value* r) {
    Value* ai = to_bits(a);
    Value* bi = to_bits(bv);
    Value* ri = to_bits(r);
    auto fc = fconsts(ri->getType()->getScalarSizeInBits());
    Value* inner = b_.CreateSelect(is_nan_bits(bi), quiet_bits(bi), splat_like(ri->getType(), fc.default_nan));
    Value* nan_val = b_.CreateSelect(is_nan_bits(ai), quiet_bits(ai), inner);
    return b_.CreateBitCast(b_.CreateSelect(is_nan_bits(ri), nan_val, ri), r->getType());
  }
  // One-operand ops: a NaN operand gives itself quieted, an invalid operation the default NaN.
  Value* nan_fixup1(Value* a, Value* r) {
    Value* ai = to_bits(a);
    Value* ri = to_bits(r);
    auto fc = fconsts(ri->getType()->getScalarSizeInBits());
    Value* nan_val = b_.CreateSelect(is_nan_bits(ai), quiet_bits(ai), splat_like(ri->getType(), fc.default_nan));
    return b_.CreateBitCast(b_.CreateSelect(is_nan_bits(ri), nan_val, ri), r->getType());
  }

  Value* fp_call(llvm::Intrinsic::ID plain, llvm::Intrinsic::ID constrained, Value* a) {
    if (!strict_) return intrinsic(plain, {a->getType()}, {a});
    llvm::Function* f = llvm::Intrinsic::getDeclaration(&mod_, constrained, {a->getType()});
    return b_.CreateConstrainedFPCall(f, {a});
  }

  Value* float_binary(Opcode opc, Rounding rm, Value* a, Value* bv) {
    switch (opc) {
      case Opcode::FMin: return b_.CreateSelect(b_.CreateFCmpOLT(a, bv), a, bv);
      case Opcode::FMax: return b_.CreateSelect(b_.CreateFCmpOGT(a, bv), a, bv);
      default: break;
    }
    ensure_rounding(rm);
    Value* r = nullptr;
    switch (opc) {
      case Opcode::FAdd: r = b_.CreateFAdd(a, bv); break;
      case Opcode::FSub: r = b_.CreateFSub(a, bv); break;
      case Opcode::FMul: r = b_.CreateFMul(a, bv); break;
      case Opcode::FDiv: r = b_.CreateFDiv(a, bv); break;
      default: return nullptr;
    }
    return nan_fixup2(a, bv, r);
  }

  Value* float_compare(ir::FCmpPred p, Value* a, Value* bv) {
    using P = llvm::CmpInst::Predicate;
    // eq lt le unord neq nlt nle ord
    static constexpr P kPreds[] = {P::FCMP_OEQ, P::FCMP_OLT, P::FCMP_OLE, P::FCMP_UNO,
                                   P::FCMP_UNE, P::FCMP_UGE, P::FCMP_UGT, P::FCMP_ORD};
    return b_.CreateFCmp(kPreds[static_cast<int>(p)], a, bv);
  }

  // Rounds to an integral value of the same float type by `rm`.
  Value* round_integral(Value* a, Rounding rm) {
    using I = llvm::Intrinsic::ID;
    I plain = llvm::Intrinsic::roundeven, cons = llvm::Intrinsic::experimental_constrained_roundeven;
    switch (rm) {
      case Rounding::Rne: break;
      case Rounding::Rdn: plain = llvm::Intrinsic::floor; cons = llvm::Intrinsic::experimental_constrained_floor; break;
      case Rounding::Rup: plain = llvm::Intrinsic::ceil; cons = llvm::Intrinsic::experimental_constrained_ceil; break;
      case Rounding::Rtz: plain = llvm::Intrinsic::trunc; cons = llvm::Intrinsic::experimental_constrained_trunc; break;
      case Rounding::Dyn:
        ensure_rounding(rm);
        plain = llvm::Intrinsic::nearbyint;
        cons = llvm::Intrinsic::experimental_constrained_nearbyint;
        break;
    }
    return fp_call(plain, cons, a);
  }

  // CVT*2SI: NaN or out of range gives the most negative integer.
  Value* float_to_int(Value* a, Rounding rm, uint32_t out_bits) {
    llvm::Type* ft = a->getType();
    llvm::Type* it = ft->isVectorTy() ? llvm::FixedVectorType::get(b_.getIntNTy(out_bits), llvm::cast<llvm::FixedVectorType>(ft)->getNumElements())
                                      : static_cast<llvm::Type*>(b_.getIntNTy(out_bits));
    Value* r = round_integral(a, rm);
    double lim = out_bits == 32 ? 2147483648.0 : 9223372036854775808.0;
    Value* limit = llvm::ConstantFP::get(ft, lim);
    Value* neg_limit = llvm::ConstantFP::get(ft, -lim);
    Value* ok = b_.CreateAnd(b_.CreateFCmpOLT(r, limit), b_.CreateFCmpOGE(r, neg_limit));
    Value* conv = b_.CreateFPToSI(r, it);
    uint64_t indefinite = out_bits == 32 ? 0x80000000u : 0x8000000000000000ull;
    return b_.CreateSelect(ok, conv, splat_like(it, indefinite));
  }

  Value* int_to_float(Value* a, Rounding rm, llvm::Type* ft) {
    ensure_rounding(rm);
    return b_.CreateSIToFP(a, ft);
  }

  Value* fcvt(Value* a, Rounding rm, Type out) {
    Value* ai = to_bits(a);
    if (out == Type::F64) {
      Value* r = b_.CreateFPExt(a, b_.getDoubleTy());
      // NaN: sign, quiet bit and the payload moved to the top of the wider fraction.
      Value* w = b_.CreateZExt(ai, i64_);
      Value* nan = b_.CreateOr(b_.CreateOr(b_.CreateShl(b_.CreateAnd(w, c64(0x80000000u)), 32), c64(0x7ff8000000000000ull)),
                               b_.CreateShl(b_.CreateAnd(w, c64(0x7fffff)), 29));
      return b_.CreateBitCast(b_.CreateSelect(is_nan_bits(ai), nan, to_bits(r)), b_.getDoubleTy());
    }
    ensure_rounding(rm);
    Value* r = b_.CreateFPTrunc(a, b_.getFloatTy());
    Value* sign = b_.CreateTrunc(b_.CreateLShr(ai, 32), i32_);
    Value* nan = b_.CreateOr(b_.CreateOr(b_.CreateAnd(sign, c32(0x80000000u)), c32(0x7fc00000u)),
                             b_.CreateAnd(b_.CreateTrunc(b_.CreateLShr(ai, 29), i32_), c32(0x7fffff)));
    return b_.CreateBitCast(b_.CreateSelect(is_nan_bits(ai), nan, to_bits(r)), b_.getFloatTy());
  }

  // ------------------------------------------------------ vector ops ----
  Value* shuffle(const ir::Op& op, Value* a, Value* bv) {
    auto* bt = llvm::FixedVectorType::get(i8_, 16);
    Value* av = b_.CreateBitCast(a, bt);
    Value* bb = b_.CreateBitCast(bv, bt);
    llvm::SmallVector<int, 16> m1, m2;
    bool zeros = false;
    for (int i = 0; i < 16; ++i) {
      auto sel = static_cast<uint8_t>((i < 8 ? op.imm >> (8 * i) : op.imm_hi >> (8 * (i - 8))) & 0xff);
      if (sel == 0x80) {
        zeros = true;
        m1.push_back(llvm::PoisonMaskElem);
        m2.push_back(16 + i);
      } else {
        m1.push_back(sel);
        m2.push_back(i);
      }
    }
    Value* r = b_.CreateShuffleVector(av, bb, m1);
    if (zeros) r = b_.CreateShuffleVector(r, llvm::Constant::getNullValue(bt), m2);
    return to_v128(r);
  }

  Value* pshufb(Value* a, Value* ctl) {
    auto* bt = llvm::FixedVectorType::get(i8_, 16);
    Value* av = b_.CreateBitCast(a, bt);
    Value* cv = b_.CreateBitCast(ctl, bt);
    if (opts_.target == LoweringTarget::X86_64)
      return to_v128(intrinsic(llvm::Intrinsic::x86_ssse3_pshuf_b_128, {}, {av, cv}));
    if (opts_.target == LoweringTarget::AArch64) {
      // TBL gives 0 for indices >= 16; keeping bit 7 maps "zero" controls there.
      Value* idx = b_.CreateAnd(cv, splat_like(bt, 0x8f));
      return to_v128(intrinsic(llvm::Intrinsic::aarch64_neon_tbl1, {bt}, {av, idx}));
    }
    Value* r = llvm::Constant::getNullValue(bt);
    for (int i = 0; i < 16; ++i) {
      Value* c = b_.CreateExtractElement(cv, i);
      Value* byte = b_.CreateExtractElement(av, b_.CreateAnd(c, b_.getInt8(15)));
      Value* z = b_.CreateICmpSLT(c, b_.getInt8(0));
      r = b_.CreateInsertElement(r, b_.CreateSelect(z, b_.getInt8(0), byte), i);
    }
    return to_v128(r);
  }

  Value* pack(const ir::Op& op, Value* a, Value* bv) {
    uint32_t sb = ir::lane_bits(op.lane), n = ir::lane_count(op.lane), db = sb / 2;
    Value* av = as_int_lanes(a, op.lane);
    Value* bb = as_int_lanes(bv, op.lane);
    llvm::SmallVector<int, 16> m;
    for (uint32_t i = 0; i < 2 * n; ++i) m.push_back(static_cast<int>(i));
    Value* cat = b_.CreateShuffleVector(av, bb, m);
    llvm::Type* ct = cat->getType();
    uint64_t lo = 0, hi = 0;
    if (op.opcode == Opcode::VPackSS) {
      lo = (~uint64_t{0}) << (db - 1);  // sign-extended minimum, truncated by splat_like's element width
      hi = (uint64_t{1} << (db - 1)) - 1;
    } else {
      hi = (uint64_t{1} << db) - 1;
    }
    Value* clamped = intrinsic(llvm::Intrinsic::smin, {ct}, {intrinsic(llvm::Intrinsic::smax, {ct}, {cat, splat_like(ct, lo)}), splat_like(ct, hi)});
    return to_v128(b_.CreateTrunc(clamped, llvm::FixedVectorType::get(b_.getIntNTy(db), 2 * n)));
  }

  Value* movmsk(const ir::Op& op, Value* a) {
    Value* v = as_int_lanes(a, op.lane);
    Value* neg = b_.CreateICmpSLT(v, llvm::Constant::getNullValue(v->getType()));
    Value* bits = b_.CreateBitCast(neg, b_.getIntNTy(ir::lane_count(op.lane)));
    return b_.CreateZExt(bits, i32_);
  }

  Value* muladd(Value* a, Value* bv) {
    auto* w = llvm::FixedVectorType::get(i32_, 8);
    Value* p = b_.CreateMul(b_.CreateSExt(as_int_lanes(a, Lane::I16), w), b_.CreateSExt(as_int_lanes(bv, Lane::I16), w));
    Value* even = b_.CreateShuffleVector(p, {0, 2, 4, 6});
    Value* odd = b_.CreateShuffleVector(p, {1, 3, 5, 7});
    return to_v128(b_.CreateAdd(even, odd));
  }

  Value* sad(Value* a, Value* bv) {
    Value* av = as_int_lanes(a, Lane::I8);
    Value* bb = as_int_lanes(bv, Lane::I8);
    auto* bt = av->getType();
    Value* d = b_.CreateSub(intrinsic(llvm::Intrinsic::umax, {bt}, {av, bb}), intrinsic(llvm::Intrinsic::umin, {bt}, {av, bb}));
    Value* dw = b_.CreateZExt(d, llvm::FixedVectorType::get(i64_, 16));
    Value* lo = b_.CreateAddReduce(b_.CreateShuffleVector(dw, {0, 1, 2, 3, 4, 5, 6, 7}));
    Value* hi = b_.CreateAddReduce(b_.CreateShuffleVector(dw, {8, 9, 10, 11, 12, 13, 14, 15}));
    Value* r = b_.CreateInsertElement(llvm::PoisonValue::get(v128_), lo, uint64_t{0});
    return b_.CreateInsertElement(r, hi, uint64_t{1});
  }

  // -------------------------------------------------------- constants ----
  Value* constant(const ir::Op& op) {
    switch (op.type) {
      case Type::F32: return llvm::ConstantFP::get(ctx_, llvm::APFloat(llvm::APFloat::IEEEsingle(), llvm::APInt(32, op.imm)));
      case Type::F64: return llvm::ConstantFP::get(ctx_, llvm::APFloat(llvm::APFloat::IEEEdouble(), llvm::APInt(64, op.imm)));
      case Type::V128: {
        llvm::Constant* elems[] = {b_.getInt64(op.imm), b_.getInt64(op.imm_hi)};
        return llvm::ConstantVector::get(elems);
      }
      case Type::I128: return llvm::ConstantInt::get(ctx_, llvm::APInt(128, {op.imm, op.imm_hi}));
      default: return llvm::ConstantInt::get(ty(op.type), op.imm);
    }
  }

  // ------------------------------------------------------------ ops ----
  // Largest span of bytes one access group may cover (well inside a page).
  static constexpr int64_t kMaxGroupSpan = 256;

  void find_access_groups(const ir::IRBlock& blk) {
    groups_.clear();
    op_group_.assign(blk.ops.size(), -1);
    op_offset_.assign(blk.ops.size(), 0);
    if (opts_.memory != MemoryStrategy::SoftMmu) return;
    // Each i64 value as (root value, constant offset) through add/sub of constants.
    std::vector<std::pair<ir::ValueId, int64_t>> base(blk.value_count(), {ir::kNoValue, 0});
    std::vector<std::optional<int64_t>> konst(blk.value_count());
    std::vector<Type> vtype(blk.value_count(), Type::Void);
    std::unordered_map<uint64_t, size_t> open;  // (root, write) -> group of the current stretch
    for (size_t i = 0; i < blk.ops.size(); ++i) {
      const ir::Op& op = blk.ops[i];
      if (op.opcode == Opcode::CallHelper) open.clear();
      if (op.result != ir::kNoValue) vtype[op.result] = op.type;
      if (op.result != ir::kNoValue && op.type == Type::I64) {
        base[op.result] = {op.result, 0};
        if (op.opcode == Opcode::Const) konst[op.result] = static_cast<int64_t>(op.imm);
        if ((op.opcode == Opcode::Add || op.opcode == Opcode::Sub) && op.nargs == 2 && op.lane == Lane::None) {
          ir::ValueId a = op.args[0], c = op.args[1];
          if (op.opcode == Opcode::Add && konst[a] && !konst[c]) std::swap(a, c);
          // Small offsets only (no signed overflow in the sums below).
          auto small = [](int64_t v) { return v > -(int64_t{1} << 32) && v < (int64_t{1} << 32); };
          if (konst[c] && base[a].first != ir::kNoValue && small(*konst[c]) && small(base[a].second)) {
            int64_t d = op.opcode == Opcode::Add ? *konst[c] : -*konst[c];
            base[op.result] = {base[a].first, base[a].second + d};
          }
        }
      }
      bool load = op.opcode == Opcode::Load, store = op.opcode == Opcode::Store;
      if (!load && !store) continue;
      auto [root, off] = base[op.args[0]];
      if (root == ir::kNoValue) continue;
      int64_t bytes = load ? (static_cast<ir::Ext>(op.mod) == ir::Ext::None ? ir::type_bytes(op.type) : op.aux / 8)
                           : ir::type_bytes(vtype[op.args[1]]);
      uint64_t key = (static_cast<uint64_t>(root) << 1) | (store ? 1 : 0);
      auto it = open.find(key);
      if (it != open.end()) {
        AccessGroup& g = groups_[it->second];
        int64_t lo = std::min(g.lo, off), hi = std::max(g.hi, off + bytes);
        if (hi - lo <= kMaxGroupSpan) {
          g.lo = lo;
          g.hi = hi;
          ++g.members;
          op_group_[i] = static_cast<int32_t>(it->second);
          op_offset_[i] = off;
          continue;
        }
      }
      open[key] = groups_.size();
      groups_.push_back(AccessGroup{root, off, off + bytes, store, 1});
      op_group_[i] = static_cast<int32_t>(groups_.size() - 1);
      op_offset_[i] = off;
    }
    for (size_t i = 0; i < op_group_.size(); ++i)  // a group of one is an ordinary access
      if (op_group_[i] >= 0 && groups_[op_group_[i]].members < 2) op_group_[i] = -1;
  }

  core::Result<void> lower_block_body(const ir::IRBlock& blk) {
    vals_.assign(blk.value_count(), nullptr);
    types_.assign(blk.value_count(), Type::Void);
    insn_pc_ = blk.start_pc;
    find_access_groups(blk);
    insn_reads_ = insns_reading_memory(blk);
    store_syncs_ = restartable() ? stores_needing_sync(blk, span_read_) : std::vector<bool>(blk.ops.size(), false);
    flags_reset_ = restartable() ? flags_set_before_observed(blk) : std::vector<uint64_t>(blk.ops.size(), 0);
    for (size_t i = 0; i < blk.ops.size(); ++i) {
      const ir::Op& op = blk.ops[i];
      cur_op_ = i;
      cur_group_ = op_group_[i] >= 0 ? &groups_[op_group_[i]] : nullptr;
      cur_offset_ = op_offset_[i];
      Value* out = nullptr;
      if (auto r = lower_op(op, out); !r) return r;
      if (op.result != ir::kNoValue) {
        if (!out) return core::failf(ErrorCode::Internal, "op {} produced no value", ir::opcode_info(op.opcode).name);
        vals_[op.result] = out;
        types_[op.result] = op.type;
      }
    }
    cur_group_ = nullptr;
    consume_loads(true);
    lower_terminator(blk.term);
    return {};
  }

  core::Result<void> lower_op(const ir::Op& op, Value*& out) {
    const auto& info = ir::opcode_info(op.opcode);
    const bool lanes = op.lane != Lane::None;
    auto rounding = [&] { return static_cast<Rounding>(op.mod); };
    switch (op.opcode) {
      case Opcode::Const: out = constant(op); return {};
      case Opcode::GetReg: out = read_reg(op); return {};
      case Opcode::SetReg: write_reg(op, arg(op, 0), arg_type(op, 0)); return {};
      case Opcode::InsnStart:
        if (sync_pending_ && (insn_reads_[cur_op_] || span_read_)) emit_sync(c64(op.imm), true, flags_reset_[cur_op_]);
        span_read_ = span_read_ || insn_reads_[cur_op_];
        insn_pc_ = core::GuestAddr(op.imm);
        return {};
      case Opcode::Load: {
        auto ext = static_cast<ir::Ext>(op.mod);
        if (ext == ir::Ext::None) {
          out = emit_load(arg(op, 0), ty(op.type), ir::type_bytes(op.type));
        } else {
          Value* raw = emit_load(arg(op, 0), b_.getIntNTy(op.aux), op.aux / 8);
          out = ext == ir::Ext::Sign ? b_.CreateSExt(raw, ty(op.type)) : b_.CreateZExt(raw, ty(op.type));
        }
        return {};
      }
      case Opcode::Store:
        emit_store(arg(op, 0), arg(op, 1), ir::type_bytes(arg_type(op, 1)));
        if (store_syncs_[cur_op_]) sync_pending_ = true;
        return {};
      case Opcode::AtomicCmpxchg:
      case Opcode::AtomicRmw:
        out = emit_atomic(op, arg(op, 0));
        sync_pending_ = restartable();
        return {};
      case Opcode::Fence: b_.CreateFence(llvm::AtomicOrdering::SequentiallyConsistent); return {};
      case Opcode::TrapIf:
        side_exit(arg(op, 0), encode_exit(TermKind::Trap, static_cast<ir::TrapReason>(op.aux)), "trap_if");
        return {};
      case Opcode::ExitIf: {
        // An early leave to a static pc (e.g. rep with a zero count, which
        // memset and memcpy of short lengths take every time): a direct exit
        // like a jump's, so it chains (or stays inside a region).
        auto* exit_bb = llvm::BasicBlock::Create(ctx_, "exit_if", fn_);
        auto* cont = llvm::BasicBlock::Create(ctx_, "cont", fn_);
        b_.CreateCondBr(arg(op, 0), exit_bb, cont);
        b_.SetInsertPoint(exit_bb);
        consume_loads(false);
        direct_exit(core::GuestAddr(op.imm), encode_exit(TermKind::Jump));
        b_.SetInsertPoint(cont);
        return {};
      }
      case Opcode::CallHelper: {
        flush_and_forget();
        restore_nearest_for_exit();
        cur_mode_ = c32(kNearest);
        Value* table = b_.CreateLoad(ptr_, mem_field(kMemCtxHelpers), "helpers");
        auto* have_table = llvm::BasicBlock::Create(ctx_, "helper_table", fn_);
        auto* do_call = llvm::BasicBlock::Create(ctx_, "helper_call", fn_);
        auto* join = llvm::BasicBlock::Create(ctx_, "helper_join", fn_);
        auto* start = b_.GetInsertBlock();
        b_.CreateCondBr(b_.CreateIsNull(table), join, have_table);
        b_.SetInsertPoint(have_table);
        Value* fnp = b_.CreateLoad(ptr_, b_.CreateConstInBoundsGEP1_64(ptr_, table, op.aux));
        b_.CreateCondBr(b_.CreateIsNull(fnp), join, do_call);
        b_.SetInsertPoint(do_call);
        std::array<Value*, 4> args = {state_, c64(0), c64(0), c64(0)};
        for (int i = 0; i < op.nargs; ++i) args[i + 1] = arg(op, i);
        auto* hty = llvm::FunctionType::get(i64_, {ptr_, i64_, i64_, i64_}, false);
        Value* r = b_.CreateCall(hty, fnp, args);
        b_.CreateBr(join);
        b_.SetInsertPoint(join);
        auto* phi = b_.CreatePHI(i64_, 3);
        phi->addIncoming(c64(0), start);
        phi->addIncoming(c64(0), have_table);
        phi->addIncoming(r, do_call);
        if (region_) reload_slots();
        sync_pending_ = restartable();
        if (op.type != Type::Void) out = phi;
        return {};
      }
      case Opcode::DivU: case Opcode::DivS: case Opcode::RemU: case Opcode::RemS: {
        Value* a = arg(op, 0);
        Value* d = arg(op, 1);
        llvm::Type* t = a->getType();
        bool sgn = op.opcode == Opcode::DivS || op.opcode == Opcode::RemS;
        Value* bad = b_.CreateICmpEQ(d, llvm::Constant::getNullValue(t));
        if (sgn) {
          uint32_t bits = t->getIntegerBitWidth();
          Value* ovf = b_.CreateAnd(b_.CreateICmpEQ(a, llvm::ConstantInt::get(ctx_, llvm::APInt::getSignedMinValue(bits))),
                                    b_.CreateICmpEQ(d, llvm::Constant::getAllOnesValue(t)));
          bad = b_.CreateOr(bad, ovf);
        }
        side_exit(bad, encode_exit(TermKind::Trap, ir::TrapReason::DivideError), "div_trap");
        out = t->getIntegerBitWidth() == 128 ? wide_divide(op.opcode, a, d) : divide(op.opcode, a, d);
        return {};
      }
      case Opcode::Add: case Opcode::Sub: case Opcode::Mul: case Opcode::MulHiU: case Opcode::MulHiS:
      case Opcode::And: case Opcode::Or: case Opcode::Xor: case Opcode::Shl: case Opcode::LShr:
      case Opcode::AShr: case Opcode::Rotl: case Opcode::Rotr: case Opcode::SMin: case Opcode::SMax:
      case Opcode::UMin: case Opcode::UMax: case Opcode::AddSatS: case Opcode::AddSatU: case Opcode::SubSatS:
      case Opcode::SubSatU: case Opcode::AvgU: {
        if (lanes) {
          out = to_v128(int_binary(op.opcode, as_int_lanes(arg(op, 0), op.lane), as_int_lanes(arg(op, 1), op.lane)));
        } else {
          out = int_binary(op.opcode, arg(op, 0), arg(op, 1));
        }
        return {};
      }
      case Opcode::Not: case Opcode::Neg: case Opcode::Abs: case Opcode::Ctz: case Opcode::Clz:
      case Opcode::Popcount: case Opcode::Bswap:
        out = lanes ? to_v128(int_unary(op.opcode, as_int_lanes(arg(op, 0), op.lane))) : int_unary(op.opcode, arg(op, 0));
        return {};
      case Opcode::Parity: out = parity(arg(op, 0)); return {};
      case Opcode::Cmp:
      case Opcode::FCmp: {
        // Scalar: an i1. Lane-wise: each lane all ones or all zeros.
        auto compare = [&](Value* a, Value* bv) {
          return op.opcode == Opcode::FCmp ? float_compare(static_cast<ir::FCmpPred>(op.mod), a, bv)
                                           : int_compare(static_cast<ir::CmpPred>(op.mod), a, bv);
        };
        if (lanes) {
          Value* m = compare(as_lanes(arg(op, 0), op.lane), as_lanes(arg(op, 1), op.lane));
          out = to_v128(b_.CreateSExt(m, int_lane_vec(op.lane)));
        } else {
          out = compare(arg(op, 0), arg(op, 1));
        }
        return {};
      }
      case Opcode::Select: out = select(arg(op, 0), arg(op, 1), arg(op, 2)); return {};
      case Opcode::ZExt: out = b_.CreateZExt(arg(op, 0), ty(op.type)); return {};
      case Opcode::SExt: out = b_.CreateSExt(arg(op, 0), ty(op.type)); return {};
      case Opcode::Trunc: out = b_.CreateTrunc(arg(op, 0), ty(op.type)); return {};
      case Opcode::Bitcast: out = b_.CreateBitCast(arg(op, 0), ty(op.type)); return {};
      case Opcode::AddCarry: case Opcode::AddOverflow: case Opcode::SubBorrow: case Opcode::SubOverflow:
        out = carry_op(op.opcode, arg(op, 0), arg(op, 1), arg(op, 2));
        return {};
      case Opcode::FAdd: case Opcode::FSub: case Opcode::FMul: case Opcode::FDiv: case Opcode::FMin:
      case Opcode::FMax: {
        Rounding rm = info.mod == ir::ModKind::Round ? rounding() : Rounding::Rne;
        if (lanes) {
          out = to_v128(float_binary(op.opcode, rm, as_lanes(arg(op, 0), op.lane), as_lanes(arg(op, 1), op.lane)));
        } else {
          out = float_binary(op.opcode, rm, arg(op, 0), arg(op, 1));
        }
        return {};
      }
      case Opcode::FSqrt: {
        Value* a = lanes ? as_lanes(arg(op, 0), op.lane) : arg(op, 0);
        ensure_rounding(rounding());
        Value* r = nan_fixup1(a, fp_call(llvm::Intrinsic::sqrt, llvm::Intrinsic::experimental_constrained_sqrt, a));
        out = lanes ? to_v128(r) : r;
        return {};
      }
      case Opcode::FCvt: out = fcvt(arg(op, 0), rounding(), op.type); return {};
      case Opcode::FRound: {
        Value* a = arg(op, 0);
        Value* r = round_integral(a, rounding());
        Value* ai = to_bits(a);
        out = b_.CreateBitCast(b_.CreateSelect(is_nan_bits(ai), quiet_bits(ai), to_bits(r)), a->getType());
        return {};
      }
      case Opcode::SIToFP:
        if (lanes) {
          out = to_v128(int_to_float(as_int_lanes(arg(op, 0), Lane::I32), rounding(), lane_vec(Lane::F32)));
        } else {
          out = int_to_float(arg(op, 0), rounding(), ty(op.type));
        }
        return {};
      case Opcode::FPToSI:
        if (lanes) {
          out = to_v128(float_to_int(as_lanes(arg(op, 0), Lane::F32), rounding(), 32));
        } else {
          out = float_to_int(arg(op, 0), rounding(), ir::type_bits(op.type));
        }
        return {};
      case Opcode::VExtract: out = b_.CreateExtractElement(as_lanes(arg(op, 0), op.lane), op.aux); return {};
      case Opcode::VInsert:
        out = to_v128(b_.CreateInsertElement(as_lanes(arg(op, 0), op.lane), arg(op, 1), op.aux));
        return {};
      case Opcode::VSplat: out = to_v128(b_.CreateVectorSplat(ir::lane_count(op.lane), arg(op, 0))); return {};
      case Opcode::VShuffle: out = shuffle(op, arg(op, 0), arg(op, 1)); return {};
      case Opcode::VPshufb: out = pshufb(arg(op, 0), arg(op, 1)); return {};
      case Opcode::VPackSS: case Opcode::VPackUS: out = pack(op, arg(op, 0), arg(op, 1)); return {};
      case Opcode::VMovmsk: out = movmsk(op, arg(op, 0)); return {};
      case Opcode::VMulAdd: out = muladd(arg(op, 0), arg(op, 1)); return {};
      case Opcode::VSad: out = sad(arg(op, 0), arg(op, 1)); return {};
    }
    return core::failf(ErrorCode::Unsupported, "cannot lower op {}", info.name);
  }

  void lower_terminator(const ir::Terminator& t) {
    switch (t.kind) {
      case TermKind::Jump: direct_exit(t.target, encode_exit(TermKind::Jump)); return;
      case TermKind::Branch: {
        auto* taken = llvm::BasicBlock::Create(ctx_, "taken", fn_);
        auto* not_taken = llvm::BasicBlock::Create(ctx_, "not_taken", fn_);
        b_.CreateCondBr(vals_[t.value], taken, not_taken);
        Value* saved_mode = cur_mode_;
        b_.SetInsertPoint(taken);
        direct_exit(t.target, encode_exit(TermKind::Branch));
        cur_mode_ = saved_mode;
        b_.SetInsertPoint(not_taken);
        direct_exit(t.fallthrough, encode_exit(TermKind::Branch));
        return;
      }
      case TermKind::IndirectJump:
      case TermKind::Ret: indirect_exit(vals_[t.value], encode_exit(t.kind), t.kind == TermKind::Ret); return;
      case TermKind::Call:
        if (t.value != ir::kNoValue) return indirect_exit(vals_[t.value], encode_exit(TermKind::Call), false);
        return direct_exit(t.target, encode_exit(TermKind::Call));
      case TermKind::Syscall:
      case TermKind::Exit: emit_return(c64(t.target.value()), encode_exit(t.kind)); return;
      case TermKind::Trap: emit_return(c64(t.target.value()), encode_exit(TermKind::Trap, t.trap, t.vector)); return;
      case TermKind::None: b_.CreateUnreachable(); return;
    }
  }
};

}  // namespace

core::Result<LoweredFunction> lower_region(std::span<const ir::IRBlock> blocks, llvm::Module& module,
                                           const LoweringOptions& options) {
  return Lowerer(module, options).run(blocks);
}

core::Result<LoweredFunction> lower_block(const ir::IRBlock& block, llvm::Module& module, const LoweringOptions& options) {
  return lower_region(std::span<const ir::IRBlock>(&block, 1), module, options);
}

uint32_t count_instructions(const llvm::Module& module) {
  uint32_t n = 0;
  for (const auto& f : module)
    for (const auto& bb : f) n += static_cast<uint32_t>(bb.size());
  return n;
}

core::Result<std::string> lower_region_to_llvm_text(std::span<const ir::IRBlock> blocks, const LoweringOptions& options) {
  llvm::LLVMContext ctx;
  llvm::Module module("vm", ctx);
  auto r = lower_region(blocks, module, options);
  if (!r) return std::unexpected(r.error());
  std::string out;
  llvm::raw_string_ostream os(out);
  module.print(os, nullptr);
  return os.str();
}

core::Result<std::string> lower_to_llvm_text(const ir::IRBlock& block, const LoweringOptions& options) {
  return lower_region_to_llvm_text(std::span<const ir::IRBlock>(&block, 1), options);
}

}  // namespace vm::translate
