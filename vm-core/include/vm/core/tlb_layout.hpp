// The software-TLB entry layout shared by vm-mem's Tlb (which fills and
// flushes entries) and the LLVM lowering's softmmu strategy (which emits the
// inline hit check). Both sides must agree byte for byte, so the layout lives
// here, in vm-core, as plain constants and structs with no LLVM types.
//
// The hit check the lowering emits for an access of `size` bytes at guest
// address `addr` of kind read / write / fetch:
//
//   TlbEntry* e   = (TlbEntry*)((char*)fast->table + ((addr >> kTlbIndexShift) & fast->index_mask));
//   uint64_t  cmp = ((addr + size - 1) & kTlbPageMask) | fast->tag;
//   if (e->addr_read == cmp)  host = (uint8_t*)(addr + e->addend);   // else: slow path
//
// The index comes from the first byte and the comparator from the last, so an
// access crossing a page boundary never hits (the two pages use different
// slots) and takes the slow path, which splits it. The low 12 bits of a
// comparator hold the flag bits below and the tag of the generation / address
// space the entry was filled under; an entry hits only when the flags are clear
// and the tag is the current one, so changing `tag` flushes every entry at
// once without touching the table.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vm::core {

inline constexpr unsigned kTlbPageBits = 12;
inline constexpr uint64_t kTlbPageSize = uint64_t{1} << kTlbPageBits;
inline constexpr uint64_t kTlbPageMask = ~(kTlbPageSize - 1);

// Flag bits in a comparator's low bits. Any set flag makes the compare fail.
inline constexpr uint64_t kTlbInvalid = uint64_t{1} << 0;  // no access of this kind through this entry
inline constexpr uint64_t kTlbWatch = uint64_t{1} << 1;    // access allowed, but must run the slow path
                                                          // (e.g. a write to a page holding translated code)
// Tag: bits 2..11 of the comparator (1024 generations / address-space ids).
inline constexpr unsigned kTlbTagShift = 2;
inline constexpr unsigned kTlbTagBits = kTlbPageBits - kTlbTagShift;
inline constexpr uint64_t kTlbTagCount = uint64_t{1} << kTlbTagBits;
inline constexpr uint64_t kTlbTagMask = (kTlbTagCount - 1) << kTlbTagShift;

// The comparator value of an entry nothing may hit.
inline constexpr uint64_t kTlbEmptyComparator = kTlbInvalid;

struct alignas(32) TlbEntry {
  uint64_t addr_read = kTlbEmptyComparator;   // page | tag, or with kTlbInvalid / kTlbWatch set
  uint64_t addr_write = kTlbEmptyComparator;
  uint64_t addr_code = kTlbEmptyComparator;
  uint64_t addend = 0;                        // host address = guest address + addend (mod 2^64)
};

inline constexpr unsigned kTlbEntrySizeLog2 = 5;
inline constexpr unsigned kTlbIndexShift = kTlbPageBits - kTlbEntrySizeLog2;
inline constexpr size_t kTlbEntryReadOffset = 0;
inline constexpr size_t kTlbEntryWriteOffset = 8;
inline constexpr size_t kTlbEntryCodeOffset = 16;
inline constexpr size_t kTlbEntryAddendOffset = 24;

static_assert(sizeof(TlbEntry) == (size_t{1} << kTlbEntrySizeLog2));
static_assert(offsetof(TlbEntry, addr_read) == kTlbEntryReadOffset);
static_assert(offsetof(TlbEntry, addr_write) == kTlbEntryWriteOffset);
static_assert(offsetof(TlbEntry, addr_code) == kTlbEntryCodeOffset);
static_assert(offsetof(TlbEntry, addend) == kTlbEntryAddendOffset);

// The part of a Tlb that generated code reads on every access. The Tlb keeps
// it up to date across resizes and tag changes; generated code must reload
// `table` and `index_mask` after any call that may flush (every slow path).
struct TlbFast {
  uint64_t index_mask = 0;  // (entries - 1) << kTlbEntrySizeLog2: a byte-offset mask
  TlbEntry* table = nullptr;
  uint64_t tag = 0;         // current tag, already shifted into bits 2..11
};

inline constexpr size_t kTlbFastIndexMaskOffset = 0;
inline constexpr size_t kTlbFastTableOffset = 8;
inline constexpr size_t kTlbFastTagOffset = 16;
static_assert(offsetof(TlbFast, index_mask) == kTlbFastIndexMaskOffset);
static_assert(offsetof(TlbFast, table) == kTlbFastTableOffset);
static_assert(offsetof(TlbFast, tag) == kTlbFastTagOffset);

// The comparator an access must match (see the header comment).
constexpr uint64_t tlb_comparator(uint64_t addr, uint64_t size, uint64_t tag) {
  return ((addr + size - 1) & kTlbPageMask) | tag;
}

}  // namespace vm::core
