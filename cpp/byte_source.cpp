#include "byte_source.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"

namespace difface {

bool ByteSource::contains(uint64_t offset, uint64_t length) const {
  return offset <= size() && length <= size() - offset;
}

void ByteSource::read(uint64_t offset, uint64_t length, void* out) const {
  if (!contains(offset, length)) {
    throw Error(codes::kCheckpoint, "the checkpoint '" + label() + "' is truncated or damaged: it needs " +
                                        std::to_string(length) + " bytes at offset " + std::to_string(offset) +
                                        " but has " + std::to_string(size()) + " bytes in all; download it again");
  }
  if (length > 0) readUnchecked(offset, length, out);
}

std::string ByteSource::readString(uint64_t offset, uint64_t length) const {
  if (!contains(offset, length)) read(offset, length, nullptr);  // throws the message above
  std::string text(static_cast<size_t>(length), '\0');
  read(offset, length, text.data());
  return text;
}

FileSource::FileSource(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    throw Error(codes::kCheckpoint, "the checkpoint '" + path + "' cannot be opened (" + std::strerror(errno) + ")");
  }
  struct stat info {};
  if (::fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    throw Error(codes::kCheckpoint, "the checkpoint '" + path + "' is not a regular file");
  }
  size_ = static_cast<uint64_t>(info.st_size);
}

FileSource::~FileSource() {
  if (fd_ >= 0) ::close(fd_);
}

void FileSource::readUnchecked(uint64_t offset, uint64_t length, void* out) const {
  auto* cursor = static_cast<char*>(out);
  while (length > 0) {
    const ssize_t got = ::pread(fd_, cursor, length, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      throw Error(codes::kCheckpoint, "reading the checkpoint '" + path_ + "' failed at offset " +
                                          std::to_string(offset) + (got < 0 ? std::string(" (") + std::strerror(errno) + ")"
                                                                            : std::string(" (the file shrank while being read)")));
    }
    cursor += got;
    offset += static_cast<uint64_t>(got);
    length -= static_cast<uint64_t>(got);
  }
}

void MemorySource::readUnchecked(uint64_t offset, uint64_t length, void* out) const {
  std::memcpy(out, data_ + offset, static_cast<size_t>(length));
}

}  // namespace difface
