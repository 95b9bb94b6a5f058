// The Lowerer's value operations: integer (carries, parity, division),
// float (x86 NaN rules, rounding modes) and vector ops. See lowerer.hpp.
#include "lowerer.hpp"

namespace vm::translate::detail {

Value* Lowerer::int_binary(Opcode opc, Value* a, Value* bv) {
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

Value* Lowerer::int_unary(Opcode opc, Value* a) {
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

Value* Lowerer::parity(Value* a) {
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

Value* Lowerer::int_compare(ir::CmpPred p, Value* a, Value* bv) {
  using P = llvm::CmpInst::Predicate;
  static constexpr P kPreds[] = {P::ICMP_EQ,  P::ICMP_NE,  P::ICMP_SLT, P::ICMP_SLE, P::ICMP_SGT,
                                 P::ICMP_SGE, P::ICMP_ULT, P::ICMP_ULE, P::ICMP_UGT, P::ICMP_UGE};
  return b_.CreateICmp(kPreds[static_cast<int>(p)], a, bv);
}

Value* Lowerer::carry_op(Opcode opc, Value* a, Value* bv, Value* c) {
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

Lowerer::FloatConsts Lowerer::fconsts(uint32_t bits) {
  if (bits == 32) return {0x80000000u, 0x7fffffffu, 0x7f800000u, 0x00400000u, 0xffc00000u};
  return {0x8000000000000000ull, 0x7fffffffffffffffull, 0x7ff0000000000000ull, 0x0008000000000000ull,
          0xfff8000000000000ull};
}

Value* Lowerer::is_nan_bits(Value* xi) {
  auto fc = fconsts(xi->getType()->getScalarSizeInBits());
  llvm::Type* it = xi->getType();
  return b_.CreateICmpUGT(b_.CreateAnd(xi, splat_like(it, fc.abs_mask)), splat_like(it, fc.inf));
}

Value* Lowerer::nan_fixup2(Value* a, Value* bv, Value* r) {
  Value* ai = to_bits(a);
  Value* bi = to_bits(bv);
  Value* ri = to_bits(r);
  auto fc = fconsts(ri->getType()->getScalarSizeInBits());
  Value* inner = b_.CreateSelect(is_nan_bits(bi), quiet_bits(bi), splat_like(ri->getType(), fc.default_nan));
  Value* nan_val = b_.CreateSelect(is_nan_bits(ai), quiet_bits(ai), inner);
  return b_.CreateBitCast(b_.CreateSelect(is_nan_bits(ri), nan_val, ri), r->getType());
}

Value* Lowerer::nan_fixup1(Value* a, Value* r) {
  Value* ai = to_bits(a);
  Value* ri = to_bits(r);
  auto fc = fconsts(ri->getType()->getScalarSizeInBits());
  Value* nan_val = b_.CreateSelect(is_nan_bits(ai), quiet_bits(ai), splat_like(ri->getType(), fc.default_nan));
  return b_.CreateBitCast(b_.CreateSelect(is_nan_bits(ri), nan_val, ri), r->getType());
}

Value* Lowerer::fp_call(llvm::Intrinsic::ID plain, llvm::Intrinsic::ID constrained, Value* a) {
  if (!strict_) return intrinsic(plain, {a->getType()}, {a});
  llvm::Function* f = llvm::Intrinsic::getDeclaration(&mod_, constrained, {a->getType()});
  return b_.CreateConstrainedFPCall(f, {a});
}

Value* Lowerer::float_binary(Opcode opc, Rounding rm, Value* a, Value* bv) {
  switch (opc) {
    case Opcode::FMin: return b_.CreateSelect(b_.CreateFCmpOLT(a, bv), a, bv);
    case Opcode::FMax: return b_.CreateSelect(b_.CreateFCmpOGT(a, bv), a, bv);
    default: break;
  }
  ensure_rounding(rm);
  // With the rounding mode unknown, LLVM still folds a constrained add or
  // subtract of constants whose result is exact as if rounding to nearest,
  // which makes x - x +0 where rounding down gives -0 (found by the random
  // JIT tests: fsub.dyn of a constant and itself under MXCSR.RC = down).
  // Passing one operand through a volatile stack slot keeps the host's
  // subtraction (on every target; rare: real code does not subtract
  // constants at run time).
  if (strict_ && (opc == Opcode::FAdd || opc == Opcode::FSub) &&
      b_.getDefaultConstrainedRounding() == llvm::RoundingMode::Dynamic &&
      (a == bv || (llvm::isa<llvm::Constant>(a) && llvm::isa<llvm::Constant>(bv)))) {
    llvm::IRBuilder<> eb(&fn_->getEntryBlock(), fn_->getEntryBlock().begin());
    llvm::AllocaInst* slot = eb.CreateAlloca(a->getType(), nullptr, "unfolded");
    b_.CreateStore(a, slot, true);
    a = b_.CreateLoad(a->getType(), slot, true);
  }
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

Value* Lowerer::float_compare(ir::FCmpPred p, Value* a, Value* bv) {
  using P = llvm::CmpInst::Predicate;
  // eq lt le unord neq nlt nle ord
  static constexpr P kPreds[] = {P::FCMP_OEQ, P::FCMP_OLT, P::FCMP_OLE, P::FCMP_UNO,
                                 P::FCMP_UNE, P::FCMP_UGE, P::FCMP_UGT, P::FCMP_ORD};
  return b_.CreateFCmp(kPreds[static_cast<int>(p)], a, bv);
}

Value* Lowerer::round_integral(Value* a, Rounding rm) {
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

Value* Lowerer::float_to_int(Value* a, Rounding rm, uint32_t out_bits) {
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

Value* Lowerer::fcvt(Value* a, Rounding rm, Type out) {
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

Value* Lowerer::shuffle(const ir::Op& op, Value* a, Value* bv) {
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

Value* Lowerer::pshufb(Value* a, Value* ctl) {
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

Value* Lowerer::pack(const ir::Op& op, Value* a, Value* bv) {
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

Value* Lowerer::movmsk(const ir::Op& op, Value* a) {
  Value* v = as_int_lanes(a, op.lane);
  Value* neg = b_.CreateICmpSLT(v, llvm::Constant::getNullValue(v->getType()));
  Value* bits = b_.CreateBitCast(neg, b_.getIntNTy(ir::lane_count(op.lane)));
  return b_.CreateZExt(bits, i32_);
}

Value* Lowerer::muladd(Value* a, Value* bv) {
  auto* w = llvm::FixedVectorType::get(i32_, 8);
  Value* p = b_.CreateMul(b_.CreateSExt(as_int_lanes(a, Lane::I16), w), b_.CreateSExt(as_int_lanes(bv, Lane::I16), w));
  Value* even = b_.CreateShuffleVector(p, {0, 2, 4, 6});
  Value* odd = b_.CreateShuffleVector(p, {1, 3, 5, 7});
  return to_v128(b_.CreateAdd(even, odd));
}

Value* Lowerer::sad(Value* a, Value* bv) {
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

Value* Lowerer::constant(const ir::Op& op) {
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

}  // namespace vm::translate::detail
