// Every built-in weighting method, for use from C++ without YAML. Each method is a class X with an options
// struct XOptions in LibTorch's style (chainable setters with defaults, `XOptions::from_config` for YAML)
// and its own header, whose first lines describe it and show a one-line usage:
//   mtl::PcGrad w(mtl::PcGradOptions().order("fixed"));
//   mtl::Dwa d(/*tasks=*/2, mtl::DwaOptions().temperature(2.0));
// Methods that keep per-task state take the task count first; the others only their options.
#pragma once

#include "mtl/weighting/aligned_mtl.h"
#include "mtl/weighting/cagrad.h"
#include "mtl/weighting/config.h"
#include "mtl/weighting/db_mtl.h"
#include "mtl/weighting/dualproj.h"
#include "mtl/weighting/dwa.h"
#include "mtl/weighting/famo.h"
#include "mtl/weighting/fixed.h"
#include "mtl/weighting/gls.h"
#include "mtl/weighting/graddrop.h"
#include "mtl/weighting/gradient_method.h"
#include "mtl/weighting/gradnorm.h"
#include "mtl/weighting/gradvac.h"
#include "mtl/weighting/imtl.h"
#include "mtl/weighting/mgda.h"
#include "mtl/weighting/nash_mtl.h"
#include "mtl/weighting/pcgrad.h"
#include "mtl/weighting/rlw.h"
#include "mtl/weighting/stch.h"
#include "mtl/weighting/uncertainty.h"
#include "mtl/weighting/upgrad.h"
#include "mtl/weighting/weighting.h"
