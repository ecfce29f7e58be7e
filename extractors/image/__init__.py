"""Image extractor: ResNet50 (fc removed, 2048-d pooled features) or EfficientNet-Lite0, trained on local images.

Public interface::

    build_resnet50_features(weights: Path | None) -> nn.Module      # float32 NCHW -> [B, 2048]
    build_backbone("resnet50" | "efficientnet_lite0", weights=None) -> nn.Module
    preprocess_images(paths, size) -> np.ndarray  # float32 NCHW, ImageNet-normalised; NumPy + Pillow only
    train_image_backbone(manifest, out_dir, resolution=64, epochs=4, seed=0, weights=None,
                         backbone="resnet50") -> nn.Module  # feature module in eval mode
    WeightsError, ImageError  # a wrong weight file / an unreadable image or bad size

``preprocess_images`` is the one preprocessing used by training and by ONNX Runtime inference.
"""

from swarmfuse.extractors.image.backbone import (BACKBONES, FEATURE_DIMS, WeightsError, build_backbone,
                                                 build_resnet50_features, load_resnet50_weights)
from swarmfuse.extractors.image.preprocess import ImageError, preprocess_images
from swarmfuse.extractors.image.train import train_image_backbone

__all__ = ["BACKBONES", "FEATURE_DIMS", "ImageError", "WeightsError", "build_backbone", "build_resnet50_features",
           "load_resnet50_weights", "preprocess_images", "train_image_backbone"]
