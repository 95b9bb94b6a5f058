#include "vm/core/memory.hpp"

#include <algorithm>
#include <cstring>

namespace vm::core {

std::string perm_string(uint8_t perms) {
  std::string s = "---";
  if (perms & kPermRead) s[0] = 'r';
  if (perms & kPermWrite) s[1] = 'w';
  if (perms & kPermExec) s[2] = 'x';
  return s;
}

Result<void> RegionMemory::add_region(GuestAddr base, std::vector<uint8_t> bytes, uint8_t perms) {
  if (bytes.empty()) return fail(ErrorCode::InvalidArgument, "empty memory region", base);
  if (base.value() + bytes.size() - 1 < base.value())
    return fail(ErrorCode::InvalidArgument, "memory region wraps around the address space", base);
  GuestAddr end = base + bytes.size();
  for (const auto& r : regions_) {
    if (base < r.end() && r.base < end)
      return fail(ErrorCode::AlreadyExists,
                  fmt::format("region [{:#x}, {:#x}) overlaps region [{:#x}, {:#x})", base, end, r.base, r.end()),
                  base);
  }
  auto pos = std::lower_bound(regions_.begin(), regions_.end(), base,
                              [](const Region& r, GuestAddr a) { return r.base < a; });
  regions_.insert(pos, Region{base, std::move(bytes), perms});
  return {};
}

const RegionMemory::Region* RegionMemory::find(GuestAddr addr) const {
  auto it = std::upper_bound(regions_.begin(), regions_.end(), addr,
                             [](GuestAddr a, const Region& r) { return a < r.base; });
  if (it == regions_.begin()) return nullptr;
  --it;
  return addr < it->end() ? &*it : nullptr;
}

Result<void> RegionMemory::access(GuestAddr addr, uint8_t* buf, size_t size, Access kind) {
  uint8_t need = kind == Access::Read ? kPermRead : kind == Access::Write ? kPermWrite : kPermExec;
  // Check the whole range first so a faulting access has no partial effect.
  size_t done = 0;
  while (done < size) {
    GuestAddr a = addr + done;
    const Region* r = find(a);
    if (r == nullptr) return fail(ErrorCode::GuestFault, fmt::format("{} of unmapped memory", access_name(kind)), a);
    if ((r->perms & need) == 0)
      return fail(ErrorCode::GuestFault,
                  fmt::format("{} of memory with permissions {}", access_name(kind), perm_string(r->perms)), a);
    done += std::min<uint64_t>(size - done, r->end() - a);
  }
  done = 0;
  while (done < size) {
    GuestAddr a = addr + done;
    auto* r = const_cast<Region*>(find(a));
    size_t off = a - r->base;
    size_t n = std::min<uint64_t>(size - done, r->bytes.size() - off);
    if (kind == Access::Write)
      std::memcpy(r->bytes.data() + off, buf + done, n);
    else
      std::memcpy(buf + done, r->bytes.data() + off, n);
    done += n;
  }
  return {};
}

Result<void> RegionMemory::read(GuestAddr addr, std::span<uint8_t> out) {
  return access(addr, out.data(), out.size(), Access::Read);
}
Result<void> RegionMemory::write(GuestAddr addr, std::span<const uint8_t> data) {
  return access(addr, const_cast<uint8_t*>(data.data()), data.size(), Access::Write);
}
Result<void> RegionMemory::fetch(GuestAddr addr, std::span<uint8_t> out) {
  return access(addr, out.data(), out.size(), Access::Fetch);
}

}  // namespace vm::core
