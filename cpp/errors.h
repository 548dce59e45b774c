// Errors the engine raises on purpose. Each carries a stable code that the binding hands
// to JavaScript unchanged, so callers can branch on the code and show the message. The codes
// are those of ERROR_CODES in lib/errors.ts (a test holds these names to that list).
#pragma once

#include <stdexcept>
#include <string>

namespace difface {

namespace codes {
inline constexpr const char* kInvalidArgument = "EARG";
inline constexpr const char* kModelDir = "EMODELDIR";
inline constexpr const char* kDevice = "EDEVICE";
inline constexpr const char* kAborted = "EABORT";
inline constexpr const char* kTorch = "ETORCH";
inline constexpr const char* kDisposed = "EDISPOSED";
inline constexpr const char* kOutOfMemory = "EOOM";
inline constexpr const char* kDetect = "EDETECT";
// A checkpoint cannot be read, holds something other than tensors and containers, or does
// not fit the network it is meant for.
inline constexpr const char* kCheckpoint = "ECHECKPOINT";
}  // namespace codes

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

}  // namespace difface
