#include "zip_records.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "errors.h"

namespace difface {
namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfDirectory = 0x06054b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint32_t kZip64End = 0x06064b50;
constexpr uint16_t kZip64Extra = 0x0001;
constexpr uint64_t kEndSize = 22;
constexpr uint64_t kCentralSize = 46;
constexpr uint64_t kLocalSize = 30;
constexpr uint64_t kMaxComment = 0xFFFF;

uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t u32(const uint8_t* p) { return static_cast<uint32_t>(u16(p)) | (static_cast<uint32_t>(u16(p + 2)) << 16); }
uint64_t u64(const uint8_t* p) { return static_cast<uint64_t>(u32(p)) | (static_cast<uint64_t>(u32(p + 4)) << 32); }

// The sizes and offset of one entry, widened by its ZIP64 extra field where they overflowed.
struct EntryFields {
  uint16_t flags = 0;
  uint16_t method = 0;
  uint64_t compressed = 0;
  uint64_t uncompressed = 0;
  uint64_t localOffset = 0;
};

// The ZIP64 extra field lists, in this order, only the fields whose 32-bit value is all ones.
bool widen(EntryFields& fields, const std::string& extra) {
  size_t at = 0;
  while (at + 4 <= extra.size()) {
    const auto* p = reinterpret_cast<const uint8_t*>(extra.data() + at);
    const uint16_t id = u16(p);
    const uint16_t length = u16(p + 2);
    if (at + 4 + length > extra.size()) return false;
    if (id == kZip64Extra) {
      const uint8_t* field = p + 4;
      uint16_t left = length;
      for (uint64_t* value : {&fields.uncompressed, &fields.compressed, &fields.localOffset}) {
        if (*value != 0xFFFFFFFFu) continue;
        if (left < 8) return false;
        *value = u64(field);
        field += 8;
        left = static_cast<uint16_t>(left - 8);
      }
    }
    at += 4 + length;
  }
  return true;
}

}  // namespace

bool ZipRecords::looksLikeZip(const ByteSource& source) {
  uint8_t magic[4];
  if (!source.contains(0, 4)) return false;
  source.read(0, 4, magic);
  return u32(magic) == kLocalHeader;
}

ZipRecords::ZipRecords(const ByteSource& source) : source_(source) { readDirectory(); }

void ZipRecords::damaged(const std::string& what) const {
  throw Error(codes::kCheckpoint, "the checkpoint '" + source_.label() + "' is a damaged zip archive (" + what +
                                      "); download it again, or check that it is a file torch.save wrote");
}

void ZipRecords::readDirectory() {
  const uint64_t size = source_.size();
  if (size < kEndSize) damaged("too short to hold a directory");
  // The end-of-directory record is the last thing in the file, before a comment of up to 64 KiB.
  const uint64_t window = std::min<uint64_t>(size, kEndSize + kMaxComment);
  std::vector<uint8_t> tail(static_cast<size_t>(window));
  source_.read(size - window, window, tail.data());
  int64_t found = -1;
  for (int64_t at = static_cast<int64_t>(window - kEndSize); at >= 0; --at) {
    if (u32(tail.data() + at) == kEndOfDirectory) {
      found = at;
      break;
    }
  }
  if (found < 0) damaged("no end-of-directory record");
  const uint64_t endOffset = size - window + static_cast<uint64_t>(found);
  const uint8_t* end = tail.data() + found;
  uint64_t entries = u16(end + 10);
  uint64_t directorySize = u32(end + 12);
  uint64_t directoryOffset = u32(end + 16);

  if (endOffset >= 20) {
    uint8_t locator[20];
    source_.read(endOffset - 20, 20, locator);
    if (u32(locator) == kZip64Locator) {
      const uint64_t zip64End = u64(locator + 8);
      uint8_t record[56];
      if (!source_.contains(zip64End, sizeof record)) damaged("the ZIP64 directory record is outside the file");
      source_.read(zip64End, sizeof record, record);
      if (u32(record) != kZip64End) damaged("the ZIP64 locator points at no ZIP64 directory record");
      entries = u64(record + 32);
      directorySize = u64(record + 40);
      directoryOffset = u64(record + 48);
    }
  }
  if (!source_.contains(directoryOffset, directorySize)) damaged("the central directory is outside the file");
  if (entries > directorySize / kCentralSize) damaged("the directory lists more entries than it can hold");
  uint64_t cursor = directoryOffset;
  const uint64_t directoryEnd = directoryOffset + directorySize;
  for (uint64_t i = 0; i < entries; ++i) addEntry(cursor, directoryEnd);
}

void ZipRecords::addEntry(uint64_t& cursor, uint64_t end) {
  if (end - cursor < kCentralSize) damaged("a directory entry runs past the directory");
  uint8_t header[kCentralSize];
  source_.read(cursor, kCentralSize, header);
  if (u32(header) != kCentralHeader) damaged("a directory entry has no signature");
  EntryFields fields;
  fields.flags = u16(header + 8);
  fields.method = u16(header + 10);
  fields.compressed = u32(header + 20);
  fields.uncompressed = u32(header + 24);
  const uint64_t nameLength = u16(header + 28);
  const uint64_t extraLength = u16(header + 30);
  const uint64_t commentLength = u16(header + 32);
  fields.localOffset = u32(header + 42);
  if (end - cursor - kCentralSize < nameLength + extraLength + commentLength) damaged("a directory entry runs past the directory");
  const std::string name = source_.readString(cursor + kCentralSize, nameLength);
  const std::string extra = source_.readString(cursor + kCentralSize + nameLength, extraLength);
  cursor += kCentralSize + nameLength + extraLength + commentLength;
  if (!widen(fields, extra)) damaged("the ZIP64 sizes of '" + name + "' are malformed");

  if (fields.flags & 1u) damaged("'" + name + "' is encrypted");
  if (fields.method != 0 || fields.compressed != fields.uncompressed) {
    damaged("'" + name + "' is compressed, which torch.save never does");
  }
  uint8_t local[kLocalSize];
  if (!source_.contains(fields.localOffset, kLocalSize)) damaged("the header of '" + name + "' is outside the file");
  source_.read(fields.localOffset, kLocalSize, local);
  if (u32(local) != kLocalHeader) damaged("the header of '" + name + "' has no signature");
  const uint64_t data = fields.localOffset + kLocalSize + u16(local + 26) + u16(local + 28);
  if (!source_.contains(data, fields.uncompressed)) damaged("the bytes of '" + name + "' run past the end of the file");

  // Every torch.save record sits in one top folder; the first entry names it.
  const size_t slash = name.find('/');
  if (slash == std::string::npos || slash == 0) damaged("'" + name + "' is not inside an archive folder");
  const std::string folder = name.substr(0, slash + 1);
  if (records_.empty() && prefix_.empty()) prefix_ = folder;
  if (folder != prefix_) damaged("records lie in two folders, '" + prefix_ + "' and '" + folder + "'");
  const std::string relative = name.substr(slash + 1);
  if (!records_.emplace(relative, ZipRecord{data, fields.uncompressed}).second) damaged("'" + name + "' appears twice");
}

bool ZipRecords::has(const std::string& name) const { return records_.count(name) != 0; }

const ZipRecord& ZipRecords::get(const std::string& name) const {
  const auto found = records_.find(name);
  if (found == records_.end()) damaged("the record '" + prefix_ + name + "' is missing");
  return found->second;
}

}  // namespace difface
