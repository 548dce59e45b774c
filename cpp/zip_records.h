// The records of a zip archive as torch.save writes them: stored (never compressed), with
// ZIP64 fields when sizes need them. Only the central directory and the local headers are
// read; every offset and size found in them is checked against the file before use, so a
// damaged or hostile archive fails with ECHECKPOINT instead of reading out of bounds or
// allocating what its headers claim.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "byte_source.h"

namespace difface {

struct ZipRecord {
  uint64_t offset = 0;  // where the record's bytes start in the file
  uint64_t size = 0;
};

class ZipRecords {
 public:
  // True when the source starts like a zip archive (a local file header).
  static bool looksLikeZip(const ByteSource& source);
  explicit ZipRecords(const ByteSource& source);

  // torch.save puts every record under one top folder, named after the file it wrote
  // (archive/data.pkl, archive/data/0, ...). Names here are relative to that folder.
  bool has(const std::string& name) const;
  const ZipRecord& get(const std::string& name) const;  // throws ECHECKPOINT when missing

 private:
  void readDirectory();
  void addEntry(uint64_t& cursor, uint64_t end);
  [[noreturn]] void damaged(const std::string& what) const;

  const ByteSource& source_;
  std::string prefix_;
  std::map<std::string, ZipRecord> records_;
};

}  // namespace difface
