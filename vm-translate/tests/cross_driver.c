/* Runs cross-translated vm-ir blocks on AArch64 / RISC-V (under qemu-user)
 * for vm_lowering_tests. Usage: driver IN OUT. IN holds a header and cases
 * (block index, X86State bytes, guest window bytes); for each case the
 * driver runs vm_block_table[index] and writes the exit code, the fault
 * address, the final state and the final window to OUT. Memory strategy
 * (header): 0 = direct; 1 = softmmu with a TLB holding the window's pages
 * and slow paths that allow exactly the window (so accesses past its end
 * fault). MemoryContext and the TLB structs mirror vm/translate/lowering.hpp
 * and vm/core/tlb_layout.hpp. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  uint64_t guest_base, region_mask;
  void *tlb, *helpers, *load_slow, *store_slow, *atomic_slow;
  uint64_t fault_addr;
  uint32_t fault_access, exit_request;
  void *user;
  void *jump_cache; /* JIT only: the engine's inline jump cache */
  uint64_t jump_cache_mask;
} MemoryContext;

typedef struct {
  uint64_t addr_read, addr_write, addr_code, addend;
} TlbEntry;
typedef struct {
  uint64_t index_mask;
  TlbEntry *table;
  uint64_t tag;
} TlbFast;

typedef uint64_t (*BlockFn)(void *state, MemoryContext *mem);
extern const BlockFn vm_block_table[];
extern const uint64_t vm_block_count;

struct Header {
  uint32_t magic, cases;
  uint64_t state_size, window_base, window_size, region_mask, strategy;
};

static struct Header h;
static uint8_t *region;

/* First byte of [addr, addr + size) outside the window, or 0 when all are inside. */
static int outside(uint64_t addr, uint64_t size, uint64_t *bad) {
  for (uint64_t i = 0; i < size; ++i) {
    uint64_t a = addr + i;
    if (a < h.window_base || a >= h.window_base + h.window_size) {
      *bad = a;
      return 1;
    }
  }
  return 0;
}
static uint32_t fault(MemoryContext *m, uint64_t a, uint32_t access) {
  m->fault_addr = a;
  m->fault_access = access;
  return 1;
}
static uint32_t load_slow(MemoryContext *m, uint64_t addr, uint64_t size, void *out) {
  uint64_t bad;
  if (outside(addr, size, &bad)) return fault(m, bad, 0);
  for (uint64_t i = 0; i < size; ++i) ((uint8_t *)out)[i] = region[(addr + i) & h.region_mask];
  return 0;
}
static uint32_t store_slow(MemoryContext *m, uint64_t addr, uint64_t size, const void *in) {
  uint64_t bad;
  if (outside(addr, size, &bad)) return fault(m, bad, 1);
  for (uint64_t i = 0; i < size; ++i) region[(addr + i) & h.region_mask] = ((const uint8_t *)in)[i];
  return 0;
}
static uint32_t atomic_slow(MemoryContext *m, uint64_t addr, uint64_t size, uint32_t op, const void *operands, void *old_out) {
  uint8_t old[16], neu[16];
  const uint8_t *ops = operands;
  if (load_slow(m, addr, size, old)) return 1;
  if (op == 6) {
    memcpy(neu, memcmp(old, ops, size) == 0 ? ops + 16 : old, size);
  } else {
    uint64_t o = 0, v = 0, n = 0;
    memcpy(&o, old, size);
    memcpy(&v, ops, size);
    switch (op) {
      case 0: n = v; break;
      case 1: n = o + v; break;
      case 2: n = o - v; break;
      case 3: n = o & v; break;
      case 4: n = o | v; break;
      default: n = o ^ v; break;
    }
    memcpy(neu, &n, size);
  }
  if (store_slow(m, addr, size, neu)) return 1;
  memcpy(old_out, old, size);
  return 0;
}

static void read_exact(FILE *f, void *p, size_t n) {
  if (fread(p, 1, n, f) != n) {
    fprintf(stderr, "short read\n");
    exit(2);
  }
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
  if (!in || !out) return 2;
  read_exact(in, &h, sizeof h);
  if (h.magic != 0x564d4352u) return 3;
  region = calloc(1, h.region_mask + 1 + 64);
  static TlbEntry entries[64];
  TlbFast tlb = {(64 - 1) << 5, entries, 3 << 2};
  for (int i = 0; i < 64; ++i) entries[i].addr_read = entries[i].addr_write = entries[i].addr_code = 1;
  for (uint64_t page = h.window_base & ~(uint64_t)4095; page < h.window_base + h.window_size; page += 4096) {
    TlbEntry *e = &entries[(page >> 12) % 64];
    /* Only pages wholly inside the window may hit; the others take the slow path. */
    if (page < h.window_base || page + 4096 > h.window_base + h.window_size) continue;
    e->addr_read = e->addr_write = page | tlb.tag;
    e->addend = (uint64_t)(uintptr_t)(region + (page & h.region_mask)) - page;
  }
  void *state = aligned_alloc(16, (h.state_size + 15) & ~(uint64_t)15);
  for (uint32_t c = 0; c < h.cases; ++c) {
    uint32_t index[2];
    read_exact(in, index, sizeof index);
    read_exact(in, state, h.state_size);
    for (uint64_t i = 0; i < h.window_size; ++i) {
      int ch = fgetc(in);
      if (ch < 0) return 2;
      region[(h.window_base + i) & h.region_mask] = (uint8_t)ch;
    }
    if (index[0] >= vm_block_count) return 4;
    MemoryContext mem;
    memset(&mem, 0, sizeof mem);
    mem.guest_base = (uint64_t)(uintptr_t)region;
    mem.region_mask = h.region_mask;
    if (h.strategy == 1) {
      mem.tlb = &tlb;
      mem.load_slow = (void *)load_slow;
      mem.store_slow = (void *)store_slow;
      mem.atomic_slow = (void *)atomic_slow;
    }
    uint64_t code = vm_block_table[index[0]](state, &mem);
    fwrite(&code, sizeof code, 1, out);
    fwrite(&mem.fault_addr, sizeof mem.fault_addr, 1, out);
    fwrite(state, 1, h.state_size, out);
    for (uint64_t i = 0; i < h.window_size; ++i) fputc(region[(h.window_base + i) & h.region_mask], out);
  }
  fclose(out);
  return 0;
}
