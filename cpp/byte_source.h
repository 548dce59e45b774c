// Random access to the bytes of a checkpoint: a file on disk, or a buffer in memory (the
// fuzzer's input). Every read is checked against the size, so a reader that trusts an
// offset found in the file can never run past its end.
#pragma once

#include <cstdint>
#include <string>

namespace difface {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  // Copies [offset, offset + length) into out; throws when that range is not inside the source.
  void read(uint64_t offset, uint64_t length, void* out) const;
  // The same range as a string (for records that are small by construction: pickles, names).
  std::string readString(uint64_t offset, uint64_t length) const;
  // True when [offset, offset + length) lies inside the source, without overflow.
  bool contains(uint64_t offset, uint64_t length) const;
  // How the source is named in error messages.
  virtual const std::string& label() const = 0;

 protected:
  virtual void readUnchecked(uint64_t offset, uint64_t length, void* out) const = 0;
};

class FileSource : public ByteSource {
 public:
  explicit FileSource(const std::string& path);
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;
  uint64_t size() const override { return size_; }
  const std::string& label() const override { return path_; }

 protected:
  void readUnchecked(uint64_t offset, uint64_t length, void* out) const override;

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

class MemorySource : public ByteSource {
 public:
  MemorySource(const uint8_t* data, uint64_t size, std::string label)
      : data_(data), size_(size), label_(std::move(label)) {}
  uint64_t size() const override { return size_; }
  const std::string& label() const override { return label_; }

 protected:
  void readUnchecked(uint64_t offset, uint64_t length, void* out) const override;

 private:
  const uint8_t* data_;
  uint64_t size_;
  std::string label_;
};

}  // namespace difface
