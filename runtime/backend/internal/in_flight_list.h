// in_flight_list.h: the operations a backend has accepted and not yet completed.
//
// It makes cancel_all() possible without a kernel feature (IORING_ASYNC_CANCEL_ANY is 5.19+) and gives
// in_flight() for the worker's drain on shutdown.
#ifndef SURGE_RUNTIME_BACKEND_INTERNAL_IN_FLIGHT_LIST_H_
#define SURGE_RUNTIME_BACKEND_INTERNAL_IN_FLIGHT_LIST_H_

#include "runtime/backend/internal/operation_access.h"

namespace surge::internal {

using InFlightList = OperationAccess::InFlightList;

}  // namespace surge::internal

#endif  // SURGE_RUNTIME_BACKEND_INTERNAL_IN_FLIGHT_LIST_H_
