// The image preprocessing keys that the image sources (multi_fashion, fashion_mnist, idx) share, read into an
// InputTransform (tensor_dataset.h), so that images can be fed the way pretrained weights expect them:
//
//   data:
//     normalize: true        # true (default): (x - 0.5) / 0.5, pixels in [-1, 1]; false: [0, 1] as scaled;
//                            # imagenet: torchvision's ImageNet statistics (kImageNetMean, kImageNetStd), which
//                            #   need 3 channels; {mean: [..], std: [..]}: one value, or one per channel
//     channels: 3            # repeat 1-channel images to 3 channels (as torchvision's Grayscale(3) does); 0: as stored
//     resize: 224            # or [H, W]: bilinear resize of every image (torch.nn.functional.interpolate,
//                            #   align_corners=False); 0: as stored
//
// Order per batch: scale uint8 to [0, 1], repeat channels, resize, normalise.
#pragma once

#include <vector>

#include "mtl/data/tensor_dataset.h"

namespace mtl {

class ConfigNode;

/// The per-channel RGB statistics of ImageNet that torchvision's pretrained weights were trained with.
extern const std::vector<double> kImageNetMean;  // 0.485, 0.456, 0.406
extern const std::vector<double> kImageNetStd;   // 0.229, 0.224, 0.225

/// Reads normalize, channels and resize from a `data:` node; errors name the key. `stored_channels` (0 when not
/// known before the files are read) lets a per-channel normalisation be checked here.
InputTransform image_transform_from_config(const ConfigNode& node, int64_t stored_channels);

}  // namespace mtl
