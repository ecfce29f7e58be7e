"""Image extractor: ResNet50 (fc removed, 2048-d pooled features) or EfficientNet-Lite0, trained on local images.

Public interface::

    build_resnet50_features(weights: Path | None) -> nn.Module      # float32 NCHW -> [B, 2048]
    build_backbone("resnet50" | "efficientnet_lite0", weights=None) -> nn.Module
    preprocess_images(paths, size) -> np.ndarray  # float32 NCHW, ImageNet-normalised; NumPy + Pillow only
    train_image_backbone(manifest, out_dir, resolution=64, recipe=ImageRecipe(), weights=None,
                         progress=None) -> nn.Module  # ResNet50 feature module in eval mode
    ImageRecipe  # the training steps: other artists' images, augmentation, distillation, schedule,
                 # fine-tuning with quantisation noise
    WeightsError, ImageError  # a wrong weight file / an unreadable image or bad size

``preprocess_images`` is the one preprocessing used by training and by ONNX Runtime inference.
"""

from swarmfuse.extractors.image.backbone import (
    BACKBONES,
    FEATURE_DIMS,
    WeightsError,
    build_backbone,
    build_resnet50_features,
    load_resnet50_weights,
)
from swarmfuse.extractors.image.preprocess import ImageError, preprocess_images
from swarmfuse.extractors.image.train import ImageRecipe, train_image_backbone

__all__ = ["BACKBONES", "FEATURE_DIMS", "ImageError", "ImageRecipe", "WeightsError", "build_backbone",
           "build_resnet50_features", "load_resnet50_weights", "preprocess_images", "train_image_backbone"]
