#include "trace/trace-hw_ne.h"
