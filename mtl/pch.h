// Precompiled header for the mtl targets: LibTorch's headers dominate compile time.
#pragma once
#include <torch/torch.h>
#include <yaml-cpp/yaml.h>
