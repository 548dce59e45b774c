// What JavaScript needs from the checkpoint reader: reading a file's weights, listing an
// architecture's layout, and checking that a checkpoint fills an architecture. Each call
// runs on a thread of its own, never on the event loop or libuv's pool.
#pragma once

#include <napi.h>

#include "../cpp/architecture.h"

namespace binding {

void InitCheckpoint(Napi::Env env, Napi::Object exports);

// { checkpoint, unwrap?, stripPrefix? } as lib/ passes it; undefined means no checkpoint.
difface::WeightsSource weightsArg(Napi::Value value, const char* what);

}  // namespace binding
