// Sync points of restartable direct access, decided per block on the vm-ir
// (docs/jit.md, "Restartable state"). Internal to the lowering.
#pragma once

#include <vector>

#include "vm/ir/ir.hpp"

namespace vm::translate::detail {

// Per op index: true at the insn marker of an instruction that reads guest
// memory (a load, an atomic, a helper call). A due sync point waits for
// such an instruction, or for the next marker once the span (the
// instructions since the last sync point) has read: until then a re-run
// from the last point stores the same values again.
std::vector<bool> insns_reading_memory(const ir::IRBlock& blk);

// Per op index: true at the stores that make a sync point due, namely those
// that may overwrite guest memory an earlier load of the same span read
// (re-run from the last sync point, that load would see the store; a load
// after a store reads what the re-run stores again). Two accesses are
// disjoint when their addresses are one vm-ir value plus constant offsets
// below 1 MiB and their bytes do not overlap. `span_open`: the block may be
// entered in the middle of a span that read (a region's internal edge), so
// any store may overwrite what it read. Atomics and helper calls make a
// sync point due too and count as reading anything. The function follows
// the lowering's placement of sync points (at insn markers), so the region
// dataflow and the lowering agree on it.
std::vector<bool> stores_needing_sync(const ir::IRBlock& blk, bool span_open);

}  // namespace vm::translate::detail
